"""CVE matching: the imported Debian security-tracker feed and its advisories per package

Revision ID: 0017_sbom
Revises: 0016_scan
Create Date: 2026-12-04 20:10:00

No feed is imported: ``kiln cve scan`` refuses until ``kiln cve import`` has run.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_sbom"
down_revision: str | Sequence[str] | None = "0016_scan"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cve_feeds",
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("packages", sa.Integer(), nullable=False),
        sa.Column("cves", sa.Integer(), nullable=False),
        sa.Column("imported_at", sa.String(length=24), nullable=False),
        sa.PrimaryKeyConstraint("feed_id", name=op.f("pk_cve_feeds")),
    )
    op.create_table(
        "cve_advisories",
        sa.Column("package", sa.String(length=256), nullable=False),
        sa.Column("advisories", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("package", name=op.f("pk_cve_advisories")),
    )


def downgrade() -> None:
    op.drop_table("cve_advisories")
    op.drop_table("cve_feeds")
