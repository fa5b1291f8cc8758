"""online experiments: definitions, impressions, feedback; arrived pool users keep their truth

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("future_users") as batch:
        batch.add_column(sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "experiments",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("arms", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("running", sa.Boolean(), nullable=True, unique=True),
    )
    op.create_table(
        "impressions",
        sa.Column("impression_id", sa.String(32), primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("experiment", sa.String(64), nullable=True),
        sa.Column("arm", sa.String(64), nullable=True),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("first_rank", sa.Integer(), nullable=False),
        sa.Column("anime_ids", sa.JSON(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("shown_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "feedback",
        sa.Column(
            "user_id",
            sa.BigInteger(),
            sa.ForeignKey("users.user_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("anime_id", sa.BigInteger(), sa.ForeignKey("anime.anime_id"), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.CheckConstraint("kind IN ('clicked', 'not_interested')", name="feedback_kind"),
    )
    for table, column in (
        ("impressions", "user_id"),
        ("impressions", "experiment"),
        ("impressions", "shown_at"),
        ("feedback", "created_at"),
    ):
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("impressions")
    op.drop_table("experiments")
    with op.batch_alter_table("future_users") as batch:
        batch.drop_column("arrived_at")
