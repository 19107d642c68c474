"""note timestamps and user display names

Revision ID: 8b41e07c2a95
Revises: 3f2a9c1b7d10
"""

import sqlalchemy as sa
from alembic import op

revision = "8b41e07c2a95"
down_revision = "3f2a9c1b7d10"


def upgrade() -> None:
    op.add_column("notes", sa.Column("created_at", sa.Text))
    op.add_column("users", sa.Column("display_name", sa.Text))
