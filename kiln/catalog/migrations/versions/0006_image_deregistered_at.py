"""Images: when each was deregistered (EC2 still describes a deregistered image by id for an hour)

Revision ID: 0006_image_deregistered_at
Revises: 0005_networks
Create Date: 2026-12-03 15:00:00

Images deregistered before this revision have no time: they stay gone, as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_image_deregistered_at"
down_revision: str | Sequence[str] | None = "0005_networks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("images", sa.Column("deregistered_at", sa.String(length=24), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.drop_column("deregistered_at")
