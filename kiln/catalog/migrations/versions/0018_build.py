"""Image builds: the build versions of each recipe (kiln build; docs/builds.md#versions)

Revision ID: 0018_build
Revises: 0017_sbom
Create Date: 2026-12-04 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_build"
down_revision: str | Sequence[str] | None = "0017_sbom"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "build_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("recipe", sa.String(length=128), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("build", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("image_id", sa.String(length=32), nullable=True),
        sa.Column("parent_image_id", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("log", sa.Text(), nullable=False),
        sa.Column("started_at", sa.String(length=24), nullable=False),
        sa.Column("finished_at", sa.String(length=24), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.account_id"],
            name=op.f("fk_build_versions_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["region"], ["regions.name"], name=op.f("fk_build_versions_region_regions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_build_versions")),
    )
    op.create_index(
        op.f("ix_build_versions_account_id_region_recipe_version_build"),
        "build_versions",
        ["account_id", "region", "recipe", "version", "build"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_build_versions_account_id_region_recipe_version_build"),
        table_name="build_versions",
    )
    op.drop_table("build_versions")
