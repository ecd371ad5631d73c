"""KMS API: key descriptions and deletion dates, caller-made aliases, key tags

Revision ID: 0004_kms_api
Revises: 0003_buckets
Create Date: 2026-12-02 06:30:00

Existing keys keep their state and their AWS-managed alias (``kms_keys.alias``); they get no
description and no deletion date.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_kms_api"
down_revision: str | Sequence[str] | None = "0003_buckets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("kms_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description", sa.String(length=8192), nullable=True))
        batch_op.add_column(sa.Column("deletion_date", sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column("pending_window_days", sa.Integer(), nullable=True))
    op.create_table(
        "kms_aliases",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("alias_name", sa.String(length=256), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("created", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_kms_aliases_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["key_id"], ["kms_keys.key_id"], name=op.f("fk_kms_aliases_key_id_kms_keys")
        ),
        sa.PrimaryKeyConstraint("account_id", "region", "alias_name", name=op.f("pk_kms_aliases")),
    )
    with op.batch_alter_table("kms_aliases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kms_aliases_key_id"), ["key_id"], unique=False)
    op.create_table(
        "kms_tags",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("tag_key", sa.String(length=128), nullable=False),
        sa.Column("tag_value", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["kms_keys.key_id"], name=op.f("fk_kms_tags_key_id_kms_keys")
        ),
        sa.PrimaryKeyConstraint("key_id", "tag_key", name=op.f("pk_kms_tags")),
    )


def downgrade() -> None:
    op.drop_table("kms_tags")
    with op.batch_alter_table("kms_aliases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kms_aliases_key_id"))
    op.drop_table("kms_aliases")
    with op.batch_alter_table("kms_keys", schema=None) as batch_op:
        batch_op.drop_column("pending_window_days")
        batch_op.drop_column("deletion_date")
        batch_op.drop_column("description")
