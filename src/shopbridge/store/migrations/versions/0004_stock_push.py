"""stock push: per-account stock rules, what each listing last pushed, oversold units, serial job kinds

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "stock_rules",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("channel_account_id", BIG_ID, nullable=False),
        sa.Column("variant_id", BIG_ID, nullable=True),
        sa.Column("buffer_units", sa.Integer(), nullable=False),
        sa.Column("buffer_percent", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("out_of_stock_threshold", sa.Integer(), nullable=False),
        sa.Column("continue_selling", sa.Boolean(), nullable=False),
        sa.Column("protect_units", sa.Integer(), nullable=False),
        sa.Column("protect_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_account_id"],
            ["channel_accounts.id"],
            name=op.f("fk_stock_rules_channel_account_id_channel_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"], ["variants.id"], name=op.f("fk_stock_rules_variant_id_variants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_rules")),
    )
    op.create_index(
        "uq_stock_rules_account_default",
        "stock_rules",
        ["channel_account_id"],
        unique=True,
        sqlite_where=sa.text("variant_id IS NULL"),
        postgresql_where=sa.text("variant_id IS NULL"),
    )
    op.create_index(
        "uq_stock_rules_account_variant",
        "stock_rules",
        ["channel_account_id", "variant_id"],
        unique=True,
        sqlite_where=sa.text("variant_id IS NOT NULL"),
        postgresql_where=sa.text("variant_id IS NOT NULL"),
    )
    with op.batch_alter_table("channel_listings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pushed_quantity", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("push_error", sa.Text(), nullable=True))
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("oversold_units", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column("oversold_units", server_default=None)
    op.create_index("ix_stock_movements_variant_id_source", "stock_movements", ["variant_id", "source"])
    op.create_index(
        "ix_jobs_running_identity_key",
        "jobs",
        ["identity_key"],
        sqlite_where=sa.text("state = 'running'"),
        postgresql_where=sa.text("state = 'running'"),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_running_identity_key", table_name="jobs")
    op.drop_index("ix_stock_movements_variant_id_source", table_name="stock_movements")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("oversold_units")
    with op.batch_alter_table("channel_listings", schema=None) as batch_op:
        batch_op.drop_column("push_error")
        batch_op.drop_column("pushed_at")
        batch_op.drop_column("pushed_quantity")
    op.drop_index("uq_stock_rules_account_variant", table_name="stock_rules")
    op.drop_index("uq_stock_rules_account_default", table_name="stock_rules")
    op.drop_table("stock_rules")
