"""display names are required: fill the gaps, then rebuild users (batch mode)

Revision ID: d2f7a1c9e803
Revises: 5a0c8e2f9b44
"""

import sqlalchemy as sa
from alembic import op

revision = "d2f7a1c9e803"
down_revision = "5a0c8e2f9b44"


def upgrade() -> None:
    op.execute("UPDATE users SET display_name = COALESCE(name, email) WHERE display_name IS NULL")
    # SQLite cannot ALTER a column to NOT NULL: batch mode copies users into a new table.
    with op.batch_alter_table("users") as batch:
        batch.alter_column("display_name", existing_type=sa.Text, nullable=False)
