"""buckets and their owners

Revision ID: 0003_buckets
Revises: 0002_instances
Create Date: 2026-12-02 06:00:00

Bucket directories that already exist are adopted at the next start of the service
(kiln/services/tasks/buckets.py ``adopt_bucket_dirs``): by the account whose export wrote there,
else by the operator's ``kiln`` account.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_buckets"
down_revision: str | Sequence[str] | None = "0002_instances"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "buckets",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("owner_id", sa.String(length=12), nullable=False),
        sa.Column("created", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["accounts.account_id"], name=op.f("fk_buckets_owner_id_accounts")
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_buckets")),
    )
    with op.batch_alter_table("buckets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_buckets_owner_id"), ["owner_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("buckets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_buckets_owner_id"))
    op.drop_table("buckets")
