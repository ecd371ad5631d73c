"""Lifecycle policies (kiln lifecycle apply|run and kiln serve's scheduler; docs/lifecycle.md)

Revision ID: 0009_lifecycle
Revises: 0008_s3
Create Date: 2026-12-03 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_lifecycle"
down_revision: str | Sequence[str] | None = "0008_s3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lifecycle_policies",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("arn", sa.String(length=1024), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("selection", sa.JSON(), nullable=False),
        sa.Column("created", sa.String(length=24), nullable=False),
        sa.Column("updated", sa.String(length=24), nullable=False),
        sa.Column("last_run_at", sa.String(length=24), nullable=True),
        sa.Column("run_started_at", sa.String(length=24), nullable=True),
        sa.Column("last_run", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.account_id"],
            name=op.f("fk_lifecycle_policies_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["region"], ["regions.name"], name=op.f("fk_lifecycle_policies_region_regions")
        ),
        sa.PrimaryKeyConstraint("account_id", "region", "name", name=op.f("pk_lifecycle_policies")),
    )


def downgrade() -> None:
    op.drop_table("lifecycle_policies")
