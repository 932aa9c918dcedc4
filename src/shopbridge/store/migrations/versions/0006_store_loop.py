"""store loop: orders placed in another account (order_links), fulfilments reported back (shipments), buyer
cancellation requests, and a listing's stock id and how it was linked

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _now() -> sa.TextClause:
    return sa.text("(CURRENT_TIMESTAMP)")


def upgrade() -> None:
    with op.batch_alter_table("channel_listings") as batch_op:
        batch_op.add_column(sa.Column("external_stock_id", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("link", sa.String(length=10), nullable=False, server_default="auto"))
        batch_op.create_check_constraint(op.f("ck_channel_listings_link"), "link IN ('auto', 'manual', 'unlinked')")
    op.create_table(
        "order_links",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel_account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=True),
        sa.Column("external_name", sa.String(length=100), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint(
            "state IN ('placing', 'placed', 'refused', 'cancel_requested', 'cancelled', 'cancel_refused')",
            name=op.f("ck_order_links_state"),
        ),
        sa.ForeignKeyConstraint(
            ["channel_account_id"],
            ["channel_accounts.id"],
            name=op.f("fk_order_links_channel_account_id_channel_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], ondelete="CASCADE", name=op.f("fk_order_links_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_links")),
        sa.UniqueConstraint("order_id", "channel_account_id", name=op.f("uq_order_links_order_id_channel_account_id")),
    )
    op.create_index(op.f("ix_order_links_channel_account_id_external_id"), "order_links",
                    ["channel_account_id", "external_id"], unique=False)  # fmt: skip
    op.create_table(
        "shipments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel_account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("carrier", sa.String(length=200), nullable=True),
        sa.Column("tracking_number", sa.String(length=200), nullable=True),
        sa.Column("tracking_url", sa.Text(), nullable=True),
        sa.Column(
            "lines", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("provider", sa.String(length=200), nullable=True),
        sa.Column("external_package_id", sa.String(length=100), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint("state IN ('pending', 'sent', 'failed')", name=op.f("ck_shipments_state")),
        sa.ForeignKeyConstraint(
            ["channel_account_id"],
            ["channel_accounts.id"],
            name=op.f("fk_shipments_channel_account_id_channel_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], ondelete="CASCADE", name=op.f("fk_shipments_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments")),
        sa.UniqueConstraint(
            "channel_account_id", "external_id", name=op.f("uq_shipments_channel_account_id_external_id")
        ),
    )
    op.create_index(op.f("ix_shipments_order_id"), "shipments", ["order_id"], unique=False)
    op.create_table(
        "cancellation_requests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel_account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("external_order_id", sa.String(length=100), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("channel_status", sa.String(length=50), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("respond_by", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.String(length=200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'approving', 'rejecting', 'approved', 'rejected', 'closed')",
            name=op.f("ck_cancellation_requests_state"),
        ),
        sa.ForeignKeyConstraint(
            ["channel_account_id"],
            ["channel_accounts.id"],
            name=op.f("fk_cancellation_requests_channel_account_id_channel_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], ondelete="CASCADE", name=op.f("fk_cancellation_requests_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cancellation_requests")),
        sa.UniqueConstraint(
            "channel_account_id", "external_id", name=op.f("uq_cancellation_requests_channel_account_id_external_id")
        ),
    )
    op.create_index(op.f("ix_cancellation_requests_state_respond_by"), "cancellation_requests",
                    ["state", "respond_by"], unique=False)  # fmt: skip


def downgrade() -> None:
    op.drop_index(op.f("ix_cancellation_requests_state_respond_by"), table_name="cancellation_requests")
    op.drop_table("cancellation_requests")
    op.drop_index(op.f("ix_shipments_order_id"), table_name="shipments")
    op.drop_table("shipments")
    op.drop_index(op.f("ix_order_links_channel_account_id_external_id"), table_name="order_links")
    op.drop_table("order_links")
    with op.batch_alter_table("channel_listings") as batch_op:
        batch_op.drop_constraint(op.f("ck_channel_listings_link"), type_="check")
        batch_op.drop_column("link")
        batch_op.drop_column("external_stock_id")
