"""Networks: VPCs, subnets, security groups and their rules; instances' VPC placement, public
address and metadata options

Revision ID: 0005_networks
Revises: 0004_kms_api
Create Date: 2026-12-03 12:10:00

Instances launched before this revision keep no VPC (``vpc_id`` NULL): they run on QEMU user
networking as before. Their metadata options get EC2's defaults.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_networks"
down_revision: str | Sequence[str] | None = "0004_kms_api"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "default_vpcs",
        sa.Column("owner_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("vpc_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["accounts.account_id"], name=op.f("fk_default_vpcs_owner_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["region"], ["regions.name"], name=op.f("fk_default_vpcs_region_regions")
        ),
        sa.PrimaryKeyConstraint("owner_id", "region", name=op.f("pk_default_vpcs")),
    )
    op.create_table(
        "vpcs",
        sa.Column("vpc_id", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.String(length=12), nullable=False),
        sa.Column("cidr_block", sa.String(length=18), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("enable_dns_support", sa.Boolean(), nullable=False),
        sa.Column("enable_dns_hostnames", sa.Boolean(), nullable=False),
        sa.Column("created", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["accounts.account_id"], name=op.f("fk_vpcs_owner_id_accounts")
        ),
        sa.ForeignKeyConstraint(["region"], ["regions.name"], name=op.f("fk_vpcs_region_regions")),
        sa.PrimaryKeyConstraint("vpc_id", name=op.f("pk_vpcs")),
    )
    op.create_index("ix_vpcs_region_owner", "vpcs", ["region", "owner_id"], unique=False)
    op.create_table(
        "subnets",
        sa.Column("subnet_id", sa.String(length=32), nullable=False),
        sa.Column("vpc_id", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.String(length=12), nullable=False),
        sa.Column("availability_zone", sa.String(length=64), nullable=False),
        sa.Column("cidr_block", sa.String(length=18), nullable=False),
        sa.Column("default_for_az", sa.Boolean(), nullable=False),
        sa.Column("map_public_ip_on_launch", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["accounts.account_id"], name=op.f("fk_subnets_owner_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["region"], ["regions.name"], name=op.f("fk_subnets_region_regions")
        ),
        sa.ForeignKeyConstraint(["vpc_id"], ["vpcs.vpc_id"], name=op.f("fk_subnets_vpc_id_vpcs")),
        sa.PrimaryKeyConstraint("subnet_id", name=op.f("pk_subnets")),
    )
    op.create_index(op.f("ix_subnets_vpc_id"), "subnets", ["vpc_id"], unique=False)
    op.create_table(
        "security_groups",
        sa.Column("group_id", sa.String(length=32), nullable=False),
        sa.Column("vpc_id", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.String(length=12), nullable=False),
        sa.Column("group_name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["accounts.account_id"], name=op.f("fk_security_groups_owner_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["region"], ["regions.name"], name=op.f("fk_security_groups_region_regions")
        ),
        sa.ForeignKeyConstraint(
            ["vpc_id"], ["vpcs.vpc_id"], name=op.f("fk_security_groups_vpc_id_vpcs")
        ),
        sa.PrimaryKeyConstraint("group_id", name=op.f("pk_security_groups")),
    )
    op.create_index(
        "uq_security_groups_vpc_name", "security_groups", ["vpc_id", "group_name"], unique=True
    )
    op.create_table(
        "security_group_rules",
        sa.Column("rule_id", sa.String(length=32), nullable=False),
        sa.Column("group_id", sa.String(length=32), nullable=False),
        sa.Column("is_egress", sa.Boolean(), nullable=False),
        sa.Column("ip_protocol", sa.String(length=8), nullable=False),
        sa.Column("from_port", sa.Integer(), nullable=False),
        sa.Column("to_port", sa.Integer(), nullable=False),
        sa.Column("cidr_ipv4", sa.String(length=18), nullable=True),
        sa.Column("cidr_ipv6", sa.String(length=49), nullable=True),
        sa.Column("referenced_group_id", sa.String(length=32), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["security_groups.group_id"],
            name=op.f("fk_security_group_rules_group_id_security_groups"),
        ),
        sa.PrimaryKeyConstraint("rule_id", name=op.f("pk_security_group_rules")),
    )
    op.create_index(op.f("ix_security_group_rules_group_id"), "security_group_rules", ["group_id"])
    op.create_index(
        op.f("ix_security_group_rules_referenced_group_id"),
        "security_group_rules",
        ["referenced_group_id"],
    )
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vpc_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("subnet_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("public_ip", sa.String(length=45), nullable=True))
        batch_op.add_column(
            sa.Column(
                "metadata_http_tokens",
                sa.String(length=16),
                nullable=False,
                server_default="optional",
            )
        )
        batch_op.add_column(
            sa.Column("metadata_hop_limit", sa.Integer(), nullable=False, server_default="1")
        )
        batch_op.add_column(
            sa.Column(
                "metadata_http_endpoint",
                sa.String(length=16),
                nullable=False,
                server_default="enabled",
            )
        )
        batch_op.add_column(
            sa.Column(
                "metadata_tags", sa.String(length=16), nullable=False, server_default="disabled"
            )
        )
        batch_op.create_index(batch_op.f("ix_instances_vpc_id"), ["vpc_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_instances_vpc_id"))
        for col in (
            "metadata_tags",
            "metadata_http_endpoint",
            "metadata_hop_limit",
            "metadata_http_tokens",
            "public_ip",
            "subnet_id",
            "vpc_id",
        ):
            batch_op.drop_column(col)
    op.drop_table("security_group_rules")
    op.drop_index("uq_security_groups_vpc_name", table_name="security_groups")
    op.drop_table("security_groups")
    op.drop_table("subnets")
    op.drop_index("ix_vpcs_region_owner", table_name="vpcs")
    op.drop_table("vpcs")
    op.drop_table("default_vpcs")
