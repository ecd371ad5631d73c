"""Image aliases, public SSM parameter maps, SSM parameters and their versions

Revision ID: 0007_ssm_aliases
Revises: 0006_image_deregistered_at
Create Date: 2026-12-03 15:00:00

New tables only; nothing existing changes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_ssm_aliases"
down_revision: str | Sequence[str] | None = "0006_image_deregistered_at"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "image_aliases",
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("alias", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("created", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["region"], ["regions.name"], name=op.f("fk_image_aliases_region_regions")
        ),
        sa.PrimaryKeyConstraint("region", "alias", name=op.f("pk_image_aliases")),
    )
    op.create_table(
        "public_parameters",
        sa.Column("name", sa.String(length=2048), nullable=False),
        sa.Column("family", sa.String(length=128), nullable=False),
        sa.Column("created", sa.String(length=24), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_public_parameters")),
    )
    op.create_table(
        "parameter_versions",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=2048), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("latest", sa.Boolean(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("value_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("description", sa.String(length=1024), nullable=True),
        sa.Column("key_id", sa.String(length=2048), nullable=True),
        sa.Column("allowed_pattern", sa.String(length=1024), nullable=True),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("data_type", sa.String(length=128), nullable=False),
        sa.Column("modified", sa.String(length=24), nullable=False),
        sa.Column("modified_user", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.account_id"],
            name=op.f("fk_parameter_versions_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "region", "name", "version", name=op.f("pk_parameter_versions")
        ),
    )
    with op.batch_alter_table("parameter_versions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_parameter_versions_current",
            ["account_id", "region", "latest", "name"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("parameter_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_parameter_versions_current")
    op.drop_table("parameter_versions")
    op.drop_table("public_parameters")
    op.drop_table("image_aliases")
