"""dashboard: browser sessions, first-time sign-in links, failed sign-ins, API token expiry and revocation, and an
order's dispatch deadline as a column the queue sorts and filters on

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TO_DISPATCH = ("on_hold", "awaiting_shipment", "partially_shipped")


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("orders") as batch_op:
        batch_op.add_column(sa.Column("dispatch_by", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_orders_dispatch_by_id"), "orders", ["dispatch_by", "id"], unique=False)
    op.create_index(op.f("ix_orders_external_id"), "orders", ["external_id"], unique=False)
    op.create_index(op.f("ix_order_lines_sku"), "order_lines", ["sku"], unique=False)
    op.create_table(
        "web_sessions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_web_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    op.create_index(op.f("ix_web_sessions_user_id"), "web_sessions", ["user_id"], unique=False)
    op.create_table(
        "sign_in_links",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sign_in_links_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_sign_in_links_token_hash")),
    )
    op.create_index(op.f("ix_sign_in_links_user_id"), "sign_in_links", ["user_id"], unique=False)
    op.create_table(
        "sign_in_failures",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_failures")),
    )
    op.create_index(op.f("ix_sign_in_failures_email_at"), "sign_in_failures", ["email", "at"], unique=False)
    op.create_index(op.f("ix_sign_in_failures_client_at"), "sign_in_failures", ["client", "at"], unique=False)
    _backfill_dispatch_by()


def _backfill_dispatch_by() -> None:
    """Orders still to be shipped take their dispatch deadline (kept as epoch seconds in ``deadlines``)."""
    deadlines_type: Any = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    orders = sa.table("orders", sa.column("id", BIG_ID), sa.column("status", sa.String()),
                      sa.column("deadlines", deadlines_type),
                      sa.column("dispatch_by", sa.DateTime(timezone=True)))  # fmt: skip
    connection = op.get_bind()
    rows = connection.execute(sa.select(orders.c.id, orders.c.deadlines).where(orders.c.status.in_(TO_DISPATCH)))
    updates = [
        {"order_id": order_id, "dispatch_by": datetime.fromtimestamp(int(deadlines["rts_sla_time"]), UTC)}
        for order_id, deadlines in rows
        if isinstance(deadlines, dict) and deadlines.get("rts_sla_time")
    ]
    if updates:
        connection.execute(
            orders.update()
            .where(orders.c.id == sa.bindparam("order_id"))
            .values(dispatch_by=sa.bindparam("dispatch_by")),
            updates,
        )


def downgrade() -> None:
    op.drop_index(op.f("ix_sign_in_failures_client_at"), table_name="sign_in_failures")
    op.drop_index(op.f("ix_sign_in_failures_email_at"), table_name="sign_in_failures")
    op.drop_table("sign_in_failures")
    op.drop_index(op.f("ix_sign_in_links_user_id"), table_name="sign_in_links")
    op.drop_table("sign_in_links")
    op.drop_index(op.f("ix_web_sessions_user_id"), table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_index(op.f("ix_order_lines_sku"), table_name="order_lines")
    op.drop_index(op.f("ix_orders_external_id"), table_name="orders")
    op.drop_index(op.f("ix_orders_dispatch_by_id"), table_name="orders")
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_column("dispatch_by")
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.drop_column("revoked_at")
        batch_op.drop_column("expires_at")
