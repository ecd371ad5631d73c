"""Governance: KMS grants, per-account settings (EBS encryption by default, block public
access for AMIs, Allowed AMIs) and operator quotas

Revision ID: 0011_govern
Revises: 0010_rbin
Create Date: 2026-12-03 20:00:00

Existing accounts get no rows: every setting at its default, no quota.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_govern"
down_revision: str | Sequence[str] | None = "0010_rbin"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kms_grants",
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("grantee_principal", sa.String(length=256), nullable=False),
        sa.Column("grantee_account", sa.String(length=12), nullable=False),
        sa.Column("retiring_principal", sa.String(length=256), nullable=True),
        sa.Column("operations", sa.JSON(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("issuing_account", sa.String(length=12), nullable=False),
        sa.Column("created", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["kms_keys.key_id"], name=op.f("fk_kms_grants_key_id_kms_keys")
        ),
        sa.PrimaryKeyConstraint("grant_id", name=op.f("pk_kms_grants")),
    )
    with op.batch_alter_table("kms_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kms_grants_key_id"), ["key_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_kms_grants_grantee_account"), ["grantee_account"], unique=False
        )
    op.create_table(
        "account_settings",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("ebs_encryption_by_default", sa.Boolean(), nullable=False),
        sa.Column("ebs_default_kms_key_id", sa.String(length=64), nullable=True),
        sa.Column("image_block_public_access", sa.String(length=32), nullable=False),
        sa.Column("allowed_images_state", sa.String(length=16), nullable=False),
        sa.Column("allowed_images_criteria", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.account_id"],
            name=op.f("fk_account_settings_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("account_id", "region", name=op.f("pk_account_settings")),
    )
    op.create_table(
        "account_quotas",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("images", sa.Integer(), nullable=True),
        sa.Column("snapshots", sa.Integer(), nullable=True),
        sa.Column("public_images", sa.Integer(), nullable=True),
        sa.Column("shares_per_image", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.account_id"],
            name=op.f("fk_account_quotas_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_quotas")),
    )


def downgrade() -> None:
    op.drop_table("account_quotas")
    op.drop_table("account_settings")
    with op.batch_alter_table("kms_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kms_grants_grantee_account"))
        batch_op.drop_index(batch_op.f("ix_kms_grants_key_id"))
    op.drop_table("kms_grants")
