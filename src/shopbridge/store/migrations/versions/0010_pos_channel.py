"""the POS channel: routed orders, tasks' progress, in-store returns and marketplace return requests, mirrored
levels with their sequence, and the status drift detector's runs

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "drift_checks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel_account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("orders_checked", sa.Integer(), nullable=False),
        sa.Column("drifted", sa.Integer(), nullable=False),
        sa.Column("repaired", sa.Integer(), nullable=False),
        sa.Column(
            "kinds", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["channel_account_id"],
            ["channel_accounts.id"],
            name=op.f("fk_drift_checks_channel_account_id_channel_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_checks")),
    )
    with op.batch_alter_table("drift_checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_drift_checks_checked_at"), ["checked_at"], unique=False)

    op.create_table(
        "mirrored_levels",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel_account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("external_location_id", sa.String(length=100), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("allocated", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_account_id"],
            ["channel_accounts.id"],
            name=op.f("fk_mirrored_levels_channel_account_id_channel_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mirrored_levels")),
        sa.UniqueConstraint(
            "channel_account_id",
            "external_location_id",
            "sku",
            name=op.f("uq_mirrored_levels_channel_account_id_external_location_id_sku"),
        ),
    )
    op.create_table(
        "return_requests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel_account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("external_order_id", sa.String(length=100), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("request_type", sa.String(length=30), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("channel_status", sa.String(length=50), nullable=True),
        sa.Column("next_action", sa.String(length=50), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("refund_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column(
            "lines", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("respond_by", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.String(length=200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'approving', 'rejecting', 'approved', 'rejected', 'closed')",
            name=op.f("ck_return_requests_state"),
        ),
        sa.ForeignKeyConstraint(
            ["channel_account_id"],
            ["channel_accounts.id"],
            name=op.f("fk_return_requests_channel_account_id_channel_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_return_requests_order_id_orders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_return_requests")),
        sa.UniqueConstraint(
            "channel_account_id", "external_id", name=op.f("uq_return_requests_channel_account_id_external_id")
        ),
    )
    with op.batch_alter_table("return_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_return_requests_state_respond_by"), ["state", "respond_by"], unique=False)

    op.create_table(
        "store_returns",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel_account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("external_location_id", sa.String(length=100), nullable=True),
        sa.Column(
            "order_ref", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "lines", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("refund_external_id", sa.String(length=100), nullable=True),
        sa.Column("refund_status", sa.String(length=50), nullable=True),
        sa.Column("refund_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
        sa.CheckConstraint(
            "state IN ('unmatched', 'refunding', 'refunded', 'refused')", name=op.f("ck_store_returns_state")
        ),
        sa.ForeignKeyConstraint(
            ["channel_account_id"],
            ["channel_accounts.id"],
            name=op.f("fk_store_returns_channel_account_id_channel_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_store_returns_order_id_orders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_returns")),
        sa.UniqueConstraint(
            "channel_account_id", "external_id", name=op.f("uq_store_returns_channel_account_id_external_id")
        ),
    )
    with op.batch_alter_table("store_returns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_store_returns_order_id"), ["order_id"], unique=False)

    with op.batch_alter_table("order_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_location_id", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("external_status", sa.String(length=30), nullable=True))

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("fulfilment_location_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_orders_fulfilment_location_id_locations"), "locations", ["fulfilment_location_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_orders_fulfilment_location_id_locations"), type_="foreignkey")
        batch_op.drop_column("fulfilment_location_id")

    with op.batch_alter_table("order_links", schema=None) as batch_op:
        batch_op.drop_column("external_status")
        batch_op.drop_column("external_location_id")

    with op.batch_alter_table("store_returns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_store_returns_order_id"))

    op.drop_table("store_returns")
    with op.batch_alter_table("return_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_return_requests_state_respond_by"))

    op.drop_table("return_requests")
    op.drop_table("mirrored_levels")
    with op.batch_alter_table("drift_checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_drift_checks_checked_at"))

    op.drop_table("drift_checks")
