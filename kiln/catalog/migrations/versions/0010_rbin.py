"""Recycle Bin retention rules, images kept in the bin, image usage reports

Revision ID: 0010_rbin
Revises: 0009_lifecycle
Create Date: 2026-12-03 20:30:00

Images deregistered before this revision are not in the bin: they stay gone, as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_rbin"
down_revision: str | Sequence[str] | None = "0009_lifecycle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _owned(table: str) -> list[sa.ForeignKeyConstraint]:
    return [
        sa.ForeignKeyConstraint(
            ["region"], ["regions.name"], name=op.f(f"fk_{table}_region_regions")
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["accounts.account_id"], name=op.f(f"fk_{table}_owner_id_accounts")
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "recycle_bin_rules",
        sa.Column("rule_id", sa.String(length=11), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.String(length=12), nullable=False),
        sa.Column("resource_type", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("resource_tags", sa.JSON(), nullable=False),
        sa.Column("exclude_tags", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("unlock_delay_days", sa.Integer(), nullable=True),
        sa.Column("lock_state", sa.String(length=16), nullable=True),
        sa.Column("lock_end_time", sa.String(length=24), nullable=True),
        sa.Column("created", sa.String(length=24), nullable=False),
        *_owned("recycle_bin_rules"),
        sa.PrimaryKeyConstraint("rule_id", name=op.f("pk_recycle_bin_rules")),
    )
    op.create_index(
        "ix_recycle_bin_rules_region_owner", "recycle_bin_rules", ["region", "owner_id"]
    )
    op.create_table(
        "recycle_bin_images",
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.String(length=12), nullable=False),
        sa.Column("enter_time", sa.String(length=24), nullable=False),
        sa.Column("exit_time", sa.String(length=24), nullable=False),
        sa.Column("delete_snapshots", sa.Boolean(), nullable=False),
        sa.Column("prior_state", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.image_id"],
            name=op.f("fk_recycle_bin_images_image_id_images"),
            ondelete="CASCADE",
        ),
        *_owned("recycle_bin_images"),
        sa.PrimaryKeyConstraint("image_id", name=op.f("pk_recycle_bin_images")),
    )
    op.create_index(op.f("ix_recycle_bin_images_exit_time"), "recycle_bin_images", ["exit_time"])
    op.create_table(
        "image_usage_reports",
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.String(length=12), nullable=False),
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("resource_types", sa.JSON(), nullable=False),
        sa.Column("account_ids", sa.JSON(), nullable=False),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.Column("client_token", sa.String(length=128), nullable=True),
        sa.Column("creation_time", sa.String(length=24), nullable=False),
        sa.Column("expiration_time", sa.String(length=24), nullable=False),
        *_owned("image_usage_reports"),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_image_usage_reports")),
    )
    op.create_index(
        "ix_image_usage_reports_region_owner", "image_usage_reports", ["region", "owner_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_image_usage_reports_region_owner", table_name="image_usage_reports")
    op.drop_table("image_usage_reports")
    op.drop_index(op.f("ix_recycle_bin_images_exit_time"), table_name="recycle_bin_images")
    op.drop_table("recycle_bin_images")
    op.drop_index("ix_recycle_bin_rules_region_owner", table_name="recycle_bin_rules")
    op.drop_table("recycle_bin_rules")
