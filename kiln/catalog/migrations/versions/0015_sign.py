"""Signing: owners' image signatures, the operator's trusted keys and each region's policy

Revision ID: 0015_sign
Revises: 0014_market
Create Date: 2026-12-04 19:30:00

Existing images are unsigned, no key is trusted and no region requires a signature.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_sign"
down_revision: str | Sequence[str] | None = "0014_market"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "image_signatures",
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("signed_by", sa.String(length=12), nullable=False),
        sa.Column("signed_at", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.image_id"],
            name=op.f("fk_image_signatures_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", name=op.f("pk_image_signatures")),
    )
    op.create_table(
        "trusted_signing_keys",
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("comment", sa.String(length=256), nullable=True),
        sa.Column("added", sa.String(length=24), nullable=False),
        sa.PrimaryKeyConstraint("region", "key_id", name=op.f("pk_trusted_signing_keys")),
    )
    op.create_table(
        "signing_policies",
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("require_signature", sa.Boolean(), nullable=False),
        sa.Column("updated", sa.String(length=24), nullable=False),
        sa.PrimaryKeyConstraint("region", name=op.f("pk_signing_policies")),
    )


def downgrade() -> None:
    op.drop_table("signing_policies")
    op.drop_table("trusted_signing_keys")
    op.drop_table("image_signatures")
