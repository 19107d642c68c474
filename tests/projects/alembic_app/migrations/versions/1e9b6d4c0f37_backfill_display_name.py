"""backfill display names from the name, else the email

Revision ID: 1e9b6d4c0f37
Revises: c7d3f5a8e612
"""

from alembic import op

revision = "1e9b6d4c0f37"
down_revision = "c7d3f5a8e612"


def upgrade() -> None:
    op.execute("UPDATE users SET display_name = COALESCE(name, email) WHERE display_name IS NULL")
