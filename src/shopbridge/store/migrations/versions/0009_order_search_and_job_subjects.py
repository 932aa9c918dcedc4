"""order search by buyer, and the order each job is about (for the order page's sync attempts)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shopbridge.domain.orders import buyer_name

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch_op:
        batch_op.add_column(sa.Column("buyer_name", sa.String(length=200), nullable=True))
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("order_id", BIG_ID, nullable=True))
    op.create_index(
        "ix_jobs_order_id", "jobs", ["order_id"], unique=False,
        sqlite_where=sa.text("order_id IS NOT NULL"), postgresql_where=sa.text("order_id IS NOT NULL"),
    )  # fmt: skip
    _backfill_buyer_names()
    op.create_index(op.f("ix_orders_buyer_name"), "orders", ["buyer_name"], unique=False)


def _backfill_buyer_names() -> None:
    """The names of the orders taken before this revision, a batch at a time."""
    orders = sa.table(
        "orders", sa.column("id", BIG_ID), sa.column("buyer", sa.JSON), sa.column("recipient", sa.JSON),
        sa.column("buyer_name", sa.String),
    )  # fmt: skip
    connection = op.get_bind()
    after = 0
    while True:
        rows = connection.execute(
            sa.select(orders.c.id, orders.c.buyer, orders.c.recipient)
            .where(orders.c.id > after)
            .order_by(orders.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        named = [{"order": row.id, "name": buyer_name(row.buyer or {}, row.recipient or {})} for row in rows]
        named = [entry for entry in named if entry["name"]]
        if named:
            connection.execute(
                orders.update().where(orders.c.id == sa.bindparam("order")).values(buyer_name=sa.bindparam("name")),
                named,
            )
        after = rows[-1].id


def downgrade() -> None:
    op.drop_index(op.f("ix_orders_buyer_name"), table_name="orders")
    op.drop_index("ix_jobs_order_id", table_name="jobs")
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("order_id")
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_column("buyer_name")
