"""jobs: a failed job whose work was queued again meanwhile ends as superseded

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES_BEFORE = "state IN ('pending', 'running', 'succeeded', 'dead', 'parked')"
STATES_AFTER = "state IN ('pending', 'running', 'succeeded', 'dead', 'parked', 'superseded')"
OUTCOMES_BEFORE = "outcome IN ('succeeded', 'retry', 'reauth', 'dead', 'lease_expired')"
OUTCOMES_AFTER = "outcome IN ('succeeded', 'retry', 'reauth', 'dead', 'lease_expired', 'superseded')"


def _replace(table: str, name: str, condition: str) -> None:
    constraint = op.f(f"ck_{table}_{name}")  # already the convention's full name
    with op.batch_alter_table(table) as batch_op:
        batch_op.drop_constraint(constraint, type_="check")
        batch_op.create_check_constraint(constraint, condition)


def upgrade() -> None:
    _replace("jobs", "state", STATES_AFTER)
    _replace("job_attempts", "outcome", OUTCOMES_AFTER)


def downgrade() -> None:
    _replace("jobs", "state", STATES_BEFORE)
    _replace("job_attempts", "outcome", OUTCOMES_BEFORE)
