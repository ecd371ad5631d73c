"""Accounts: the operator's "verified provider" mark (docs/community.md)

Revision ID: 0013_community
Revises: 0011_govern
Create Date: 2026-12-04 19:30:00

Accounts that exist before this revision are not verified.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_community"
down_revision: str | Sequence[str] | None = "0011_govern"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "accounts",
        sa.Column("verified", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("verified")
