"""S3 on the endpoint: a bucket's region (LocationConstraint) and multipart uploads

Revision ID: 0008_s3
Revises: 0007_ssm_aliases
Create Date: 2026-12-03 15:00:00

Buckets made before this revision (by ``kiln bucket create`` or an export) are in us-east-1,
where S3 puts a bucket created without a LocationConstraint.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_s3"
down_revision: str | Sequence[str] | None = "0007_ssm_aliases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("buckets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "region",
                sa.String(length=32),
                server_default=sa.text("'us-east-1'"),
                nullable=False,
            )
        )
    op.create_table(
        "multipart_uploads",
        sa.Column("upload_id", sa.String(length=64), nullable=False),
        sa.Column("bucket", sa.String(length=63), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.String(length=12), nullable=False),
        sa.Column("initiated", sa.String(length=24), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bucket"], ["buckets.name"], name=op.f("fk_multipart_uploads_bucket_buckets")
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["accounts.account_id"],
            name=op.f("fk_multipart_uploads_owner_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("upload_id", name=op.f("pk_multipart_uploads")),
    )
    with op.batch_alter_table("multipart_uploads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_multipart_uploads_bucket"), ["bucket"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("multipart_uploads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_multipart_uploads_bucket"))
    op.drop_table("multipart_uploads")
    with op.batch_alter_table("buckets", schema=None) as batch_op:
        batch_op.drop_column("region")
