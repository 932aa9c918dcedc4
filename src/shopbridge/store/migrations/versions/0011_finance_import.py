"""finance import: TikTok statements, their transactions and payments, in minor units beside their currency

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-12
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=nullable)


def _minor(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def _account_key(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["channel_account_id"], ["channel_accounts.id"], name=op.f(f"fk_{table}_channel_account_id_channel_accounts")
    )


def _updated_at() -> sa.Column[object]:
    return sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(),
                     nullable=False)  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "finance_statements",
        _id("id"),
        _id("channel_account_id"),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("statement_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payment_status", sa.String(length=20), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        _minor("settlement_minor"),
        _minor("revenue_minor"),
        _minor("fee_minor"),
        _minor("adjustment_minor"),
        _minor("shipping_cost_minor"),
        _minor("net_sales_minor"),
        sa.Column("payment_external_id", sa.String(length=100), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("transaction_count", sa.Integer(), nullable=True),
        _updated_at(),
        _account_key("finance_statements"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finance_statements")),
        sa.UniqueConstraint(
            "channel_account_id", "external_id", name=op.f("uq_finance_statements_channel_account_id_external_id")
        ),
    )
    with op.batch_alter_table("finance_statements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_finance_statements_channel_account_id_statement_time"),
            ["channel_account_id", "statement_time"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_finance_statements_channel_account_id_payment_external_id"),
            ["channel_account_id", "payment_external_id"],
            unique=False,
        )

    op.create_table(
        "finance_transactions",
        _id("id"),
        _id("channel_account_id"),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        _id("statement_id"),
        sa.Column("type", sa.String(length=60), nullable=False),
        sa.Column("external_order_id", sa.String(length=100), nullable=True),
        _id("order_id", nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        _minor("revenue_minor"),
        _minor("platform_commission_minor"),
        _minor("referral_fee_minor"),
        _minor("transaction_fee_minor"),
        _minor("affiliate_commission_minor"),
        _minor("fee_minor"),
        _minor("shipping_cost_minor"),
        _minor("refund_minor"),
        _minor("adjustment_minor"),
        _minor("reserve_minor"),
        _minor("settlement_minor"),
        sa.Column("order_created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=False),
        _updated_at(),
        _account_key("finance_transactions"),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_finance_transactions_order_id_orders"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["statement_id"],
            ["finance_statements.id"],
            name=op.f("fk_finance_transactions_statement_id_finance_statements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finance_transactions")),
        sa.UniqueConstraint(
            "channel_account_id", "external_id", name=op.f("uq_finance_transactions_channel_account_id_external_id")
        ),
    )
    with op.batch_alter_table("finance_transactions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_finance_transactions_statement_id"), ["statement_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_finance_transactions_channel_account_id_external_order_id"),
            ["channel_account_id", "external_order_id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_finance_transactions_order_id"), ["order_id"], unique=False)

    op.create_table(
        "finance_payments",
        _id("id"),
        _id("channel_account_id"),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=True),
        _minor("amount_minor"),
        sa.Column("currency", sa.String(length=3), nullable=False),
        _minor("settlement_minor", nullable=True),
        sa.Column("settlement_currency", sa.String(length=3), nullable=True),
        _minor("reserve_minor", nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("bank_account", sa.String(length=40), nullable=True),
        _updated_at(),
        _account_key("finance_payments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finance_payments")),
        sa.UniqueConstraint(
            "channel_account_id", "external_id", name=op.f("uq_finance_payments_channel_account_id_external_id")
        ),
    )
    with op.batch_alter_table("finance_payments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_finance_payments_channel_account_id_created_at"),
            ["channel_account_id", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("finance_payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_finance_payments_channel_account_id_created_at"))

    op.drop_table("finance_payments")
    with op.batch_alter_table("finance_transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_finance_transactions_order_id"))
        batch_op.drop_index(batch_op.f("ix_finance_transactions_channel_account_id_external_order_id"))
        batch_op.drop_index(batch_op.f("ix_finance_transactions_statement_id"))

    op.drop_table("finance_transactions")
    with op.batch_alter_table("finance_statements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_finance_statements_channel_account_id_payment_external_id"))
        batch_op.drop_index(batch_op.f("ix_finance_statements_channel_account_id_statement_time"))

    op.drop_table("finance_statements")
