"""instances and key pairs

Revision ID: 0002_instances
Revises: 0001
Create Date: 2026-11-23 19:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_instances"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "key_pairs",
        sa.Column("key_pair_id", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.String(length=12), nullable=False),
        sa.Column("key_name", sa.String(length=255), nullable=False),
        sa.Column("key_type", sa.String(length=16), nullable=False),
        sa.Column("key_fingerprint", sa.String(length=128), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("create_time", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["accounts.account_id"], name=op.f("fk_key_pairs_owner_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["region"], ["regions.name"], name=op.f("fk_key_pairs_region_regions")
        ),
        sa.PrimaryKeyConstraint("key_pair_id", name=op.f("pk_key_pairs")),
    )
    with op.batch_alter_table("key_pairs", schema=None) as batch_op:
        batch_op.create_index(
            "uq_key_pairs_region_owner_name", ["region", "owner_id", "key_name"], unique=True
        )

    op.create_table(
        "instances",
        sa.Column("instance_id", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.String(length=12), nullable=False),
        sa.Column("reservation_id", sa.String(length=32), nullable=False),
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("instance_type", sa.String(length=32), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("memory_mib", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_reason_code", sa.String(length=64), nullable=True),
        sa.Column("state_reason_message", sa.Text(), nullable=True),
        sa.Column("state_transition_reason", sa.String(length=255), nullable=True),
        sa.Column("key_name", sa.String(length=255), nullable=True),
        sa.Column("public_key", sa.Text(), nullable=True),
        sa.Column("launch_time", sa.String(length=24), nullable=False),
        sa.Column("availability_zone", sa.String(length=64), nullable=False),
        sa.Column("ami_launch_index", sa.Integer(), nullable=False),
        sa.Column("architecture", sa.String(length=16), nullable=False),
        sa.Column("root_device_name", sa.String(length=64), nullable=False),
        sa.Column("root_device_type", sa.String(length=16), nullable=False),
        sa.Column("root_snapshot_id", sa.String(length=32), nullable=True),
        sa.Column("ssh_port", sa.Integer(), nullable=True),
        sa.Column("user_data", sa.Text(), nullable=True),
        sa.Column("disable_api_termination", sa.Boolean(), nullable=False),
        sa.Column("shutdown_behavior", sa.String(length=16), nullable=False),
        sa.Column("security_groups", sa.JSON(), nullable=False),
        sa.Column("client_token", sa.String(length=64), nullable=True),
        sa.Column("private_ip", sa.String(length=45), nullable=False),
        sa.Column("mac_address", sa.String(length=17), nullable=False),
        sa.Column("ebs_optimized", sa.Boolean(), nullable=False),
        sa.Column("boot_count", sa.Integer(), nullable=False),
        sa.Column("terminated_at", sa.String(length=24), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["accounts.account_id"], name=op.f("fk_instances_owner_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["region"], ["regions.name"], name=op.f("fk_instances_region_regions")
        ),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_instances")),
    )
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.create_index("ix_instances_region_owner", ["region", "owner_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_instances_reservation_id"), ["reservation_id"], unique=False
        )
        batch_op.create_index("ix_instances_state", ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_index("ix_instances_state")
        batch_op.drop_index(batch_op.f("ix_instances_reservation_id"))
        batch_op.drop_index("ix_instances_region_owner")
    op.drop_table("instances")
    with op.batch_alter_table("key_pairs", schema=None) as batch_op:
        batch_op.drop_index("uq_key_pairs_region_owner_name")
    op.drop_table("key_pairs")
