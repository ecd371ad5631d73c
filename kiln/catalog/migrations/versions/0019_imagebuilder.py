"""Image Builder API resources: components, recipes, configurations, images (docs/imagebuilder.md)

Revision ID: 0019_imagebuilder
Revises: 0018_build
Create Date: 2026-12-04 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_imagebuilder"
down_revision: str | Sequence[str] | None = "0018_build"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "imagebuilder_resources",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("arn", sa.String(length=512), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("log", sa.Text(), nullable=False),
        sa.Column("created_at", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.account_id"],
            name=op.f("fk_imagebuilder_resources_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["region"], ["regions.name"], name=op.f("fk_imagebuilder_resources_region_regions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imagebuilder_resources")),
        sa.UniqueConstraint("arn", name=op.f("uq_imagebuilder_resources_arn")),
    )
    op.create_index(
        op.f("ix_imagebuilder_resources_account_id_region_kind"),
        "imagebuilder_resources",
        ["account_id", "region", "kind"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_imagebuilder_resources_account_id_region_kind"),
        table_name="imagebuilder_resources",
    )
    op.drop_table("imagebuilder_resources")
