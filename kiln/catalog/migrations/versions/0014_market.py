"""Marketplace: products, subscriptions, instances' product codes, metered usage

Revision ID: 0014_market
Revises: 0013_community
Create Date: 2026-12-04 19:30:00

Instances launched before this revision carry no product codes and are not metered.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_market"
down_revision: str | Sequence[str] | None = "0013_community"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "marketplace_products",
        sa.Column("product_id", sa.String(length=32), nullable=False),
        sa.Column("product_code", sa.String(length=64), nullable=False),
        sa.Column("vendor_id", sa.String(length=12), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("prices", sa.JSON(), nullable=False),
        sa.Column("created", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["vendor_id"],
            ["accounts.account_id"],
            name=op.f("fk_marketplace_products_vendor_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_marketplace_products")),
        sa.UniqueConstraint("product_code", name=op.f("uq_marketplace_products_product_code")),
    )
    op.create_index(
        op.f("ix_marketplace_products_vendor_id"), "marketplace_products", ["vendor_id"]
    )
    op.create_table(
        "marketplace_subscriptions",
        sa.Column("product_id", sa.String(length=32), nullable=False),
        sa.Column("buyer_id", sa.String(length=12), nullable=False),
        sa.Column("subscribed", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["marketplace_products.product_id"],
            name=op.f("fk_marketplace_subscriptions_product_id_marketplace_products"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["buyer_id"],
            ["accounts.account_id"],
            name=op.f("fk_marketplace_subscriptions_buyer_id_accounts"),
        ),
        sa.PrimaryKeyConstraint(
            "product_id", "buyer_id", name=op.f("pk_marketplace_subscriptions")
        ),
    )
    op.create_table(
        "instance_product_codes",
        sa.Column("instance_id", sa.String(length=32), nullable=False),
        sa.Column("product_code_id", sa.String(length=64), nullable=False),
        sa.Column("product_code_type", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.instance_id"],
            name=op.f("fk_instance_product_codes_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "instance_id", "product_code_id", name=op.f("pk_instance_product_codes")
        ),
    )
    op.create_table(
        "marketplace_usage",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("product_id", sa.String(length=32), nullable=False),
        sa.Column("instance_id", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("buyer_id", sa.String(length=12), nullable=False),
        sa.Column("instance_type", sa.String(length=32), nullable=False),
        sa.Column("started", sa.String(length=24), nullable=False),
        sa.Column("ended", sa.String(length=24), nullable=True),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["marketplace_products.product_id"],
            name=op.f("fk_marketplace_usage_product_id_marketplace_products"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["region"], ["regions.name"], name=op.f("fk_marketplace_usage_region_regions")
        ),
        sa.ForeignKeyConstraint(
            ["buyer_id"],
            ["accounts.account_id"],
            name=op.f("fk_marketplace_usage_buyer_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_marketplace_usage")),
    )
    op.create_index(op.f("ix_marketplace_usage_product_id"), "marketplace_usage", ["product_id"])
    op.create_index(op.f("ix_marketplace_usage_instance_id"), "marketplace_usage", ["instance_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_marketplace_usage_instance_id"), table_name="marketplace_usage")
    op.drop_index(op.f("ix_marketplace_usage_product_id"), table_name="marketplace_usage")
    op.drop_table("marketplace_usage")
    op.drop_table("instance_product_codes")
    op.drop_table("marketplace_subscriptions")
    op.drop_index(op.f("ix_marketplace_products_vendor_id"), table_name="marketplace_products")
    op.drop_table("marketplace_products")
