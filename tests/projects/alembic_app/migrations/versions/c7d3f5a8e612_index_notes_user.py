"""index notes by user

Revision ID: c7d3f5a8e612
Revises: 8b41e07c2a95
"""

from alembic import op

revision = "c7d3f5a8e612"
down_revision = "8b41e07c2a95"


def upgrade() -> None:
    op.create_index("ix_notes_user_id", "notes", ["user_id"])
