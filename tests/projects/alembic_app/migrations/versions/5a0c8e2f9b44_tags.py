"""tags on notes

Revision ID: 5a0c8e2f9b44
Revises: 1e9b6d4c0f37
"""

import sqlalchemy as sa
from alembic import op

revision = "5a0c8e2f9b44"
down_revision = "1e9b6d4c0f37"


def upgrade() -> None:
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
    )
    op.create_table(
        "note_tags",
        sa.Column("note_id", sa.Integer, sa.ForeignKey("notes.id"), primary_key=True),
        sa.Column("tag_id", sa.Integer, sa.ForeignKey("tags.id"), primary_key=True),
    )
