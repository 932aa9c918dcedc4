"""finance reconciliation: exceptions with the money at stake, the chart of accounts, couriers and their COD
remittances

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = (
    "kind IN ('missing_settlement', 'amount_difference', 'unknown_order', 'late_release', "
    "'refund_not_deducted', 'fee_outside_rate')"
)


def _id(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=nullable)


def _minor(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def _time(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _created(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "finance_exceptions",
        _id("id"),
        _id("channel_account_id"),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        _id("order_id", nullable=True),
        sa.Column("external_order_id", sa.String(length=100), nullable=True),
        sa.Column("statement_external_id", sa.String(length=100), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        _minor("amount_minor"),
        _minor("expected_minor", nullable=True),
        _minor("actual_minor", nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        _time("expected_by", nullable=True),
        _time("found_at"),
        _time("last_found_at"),
        _time("cleared_at", nullable=True),
        _time("acknowledged_at", nullable=True),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint(KINDS, name=op.f("ck_finance_exceptions_kind")),
        sa.ForeignKeyConstraint(
            ["channel_account_id"],
            ["channel_accounts.id"],
            name=op.f("fk_finance_exceptions_channel_account_id_channel_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_finance_exceptions_order_id_orders"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finance_exceptions")),
        sa.UniqueConstraint(
            "channel_account_id", "kind", "subject", name=op.f("uq_finance_exceptions_channel_account_id_kind_subject")
        ),
    )
    with op.batch_alter_table("finance_exceptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_finance_exceptions_cleared_at_acknowledged_at"),
            ["cleared_at", "acknowledged_at"],
            unique=False,
        )

    op.create_table(
        "ledger_accounts",
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        _created("updated_at"),
        sa.PrimaryKeyConstraint("role", name=op.f("pk_ledger_accounts")),
    )

    op.create_table(
        "couriers",
        _id("id"),
        sa.Column("code", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "columns", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("date_format", sa.String(length=40), nullable=False),
        _created("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_couriers")),
        sa.UniqueConstraint("code", name=op.f("uq_couriers_code")),
    )

    op.create_table(
        "cod_remittance_files",
        _id("id"),
        _id("courier_id"),
        sa.Column("filename", sa.String(length=300), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        _minor("total_minor"),
        _time("imported_at"),
        sa.Column("imported_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["courier_id"], ["couriers.id"], name=op.f("fk_cod_remittance_files_courier_id_couriers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cod_remittance_files")),
        sa.UniqueConstraint("courier_id", "sha256", name=op.f("uq_cod_remittance_files_courier_id_sha256")),
    )

    op.create_table(
        "cod_remittances",
        _id("id"),
        _id("courier_id"),
        _id("file_id"),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("external_order_id", sa.String(length=100), nullable=True),
        _id("order_id", nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        _minor("collected_minor"),
        _minor("fee_minor"),
        _minor("remitted_minor"),
        sa.Column("collected_on", sa.Date(), nullable=True),
        sa.Column("remitted_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["courier_id"], ["couriers.id"], name=op.f("fk_cod_remittances_courier_id_couriers")),
        sa.ForeignKeyConstraint(
            ["file_id"], ["cod_remittance_files.id"], name=op.f("fk_cod_remittances_file_id_cod_remittance_files")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_cod_remittances_order_id_orders"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cod_remittances")),
        sa.UniqueConstraint("courier_id", "reference", name=op.f("uq_cod_remittances_courier_id_reference")),
    )
    with op.batch_alter_table("cod_remittances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cod_remittances_order_id"), ["order_id"], unique=False)

    # Cash on delivery: a courier's remittance line is matched by tracking number; the COD report reads COD orders.
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shipments_tracking_number"), ["tracking_number"], unique=False)
    # The daily finance check reads a day's status changes and a day's new orders per shop.
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_is_cod_status"), ["is_cod", "status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_orders_channel_account_id_channel_created_at"),
            ["channel_account_id", "channel_created_at"],
            unique=False,
        )
    with op.batch_alter_table("order_status_history", schema=None) as batch_op:
        # A change made by a person is recorded as hub:<their e-mail>, up to 200 characters long.
        batch_op.alter_column("source", existing_type=sa.String(length=30), type_=sa.String(length=230),
                              existing_nullable=False)  # fmt: skip
        batch_op.create_index(
            batch_op.f("ix_order_status_history_status_occurred_at"), ["status", "occurred_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("order_status_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_status_history_status_occurred_at"))
        batch_op.alter_column("source", existing_type=sa.String(length=230), type_=sa.String(length=30),
                              existing_nullable=False)  # fmt: skip
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_channel_account_id_channel_created_at"))
        batch_op.drop_index(batch_op.f("ix_orders_is_cod_status"))
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shipments_tracking_number"))
    with op.batch_alter_table("cod_remittances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cod_remittances_order_id"))
    op.drop_table("cod_remittances")
    op.drop_table("cod_remittance_files")
    op.drop_table("couriers")
    op.drop_table("ledger_accounts")
    with op.batch_alter_table("finance_exceptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_finance_exceptions_cleared_at_acknowledged_at"))
    op.drop_table("finance_exceptions")
