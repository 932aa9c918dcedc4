"""hardening: inbox events of unknown types are kept as ignored; an authorization link's state is used once

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES_BEFORE = "status IN ('received', 'processed', 'failed', 'rejected')"
STATUSES_AFTER = "status IN ('received', 'processed', 'failed', 'rejected', 'ignored')"


def _replace_status_check(condition: str) -> None:
    constraint = op.f("ck_inbound_events_status")
    with op.batch_alter_table("inbound_events") as batch_op:
        batch_op.drop_constraint(constraint, type_="check")
        batch_op.create_check_constraint(constraint, condition)


def upgrade() -> None:
    _replace_status_check(STATUSES_AFTER)
    op.create_table(
        "oauth_states",
        sa.Column("nonce", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=50), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_oauth_states")),
    )
    op.create_index(op.f("ix_oauth_states_used_at"), "oauth_states", ["used_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_oauth_states_used_at"), table_name="oauth_states")
    op.drop_table("oauth_states")
    op.execute("UPDATE inbound_events SET status = 'processed' WHERE status = 'ignored'")
    _replace_status_check(STATUSES_BEFORE)
