"""Offline compliance scans: the latest scan of each image and its findings

Revision ID: 0016_scan
Revises: 0015_sign
Create Date: 2026-12-04 19:40:00

Images made before this revision have no scan: they are unscanned until ``kiln scan`` runs.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_scan"
down_revision: str | Sequence[str] | None = "0015_sign"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "image_scans",
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("snapshot_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("policy", sa.String(length=128), nullable=False),
        sa.Column("bytes_read", sa.BigInteger(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("first_scanned_at", sa.String(length=24), nullable=False),
        sa.Column("scanned_at", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.image_id"],
            name=op.f("fk_image_scans_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["region"], ["regions.name"], name=op.f("fk_image_scans_region_regions")
        ),
        sa.PrimaryKeyConstraint("image_id", name=op.f("pk_image_scans")),
    )


def downgrade() -> None:
    op.drop_table("image_scans")
