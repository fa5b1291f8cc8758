"""precomputed rankings carry the predicted ratings of their first page

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("precomputed_rankings") as batch:
        batch.add_column(sa.Column("first_page_ratings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("precomputed_rankings") as batch:
        batch.drop_column("first_page_ratings")
