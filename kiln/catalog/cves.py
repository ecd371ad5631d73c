"""The imported CVE feed (docs/sbom.md#cve-feed; tables ``cve_feeds``, ``cve_advisories``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.scan.cve import Advisory


@dataclass(frozen=True, slots=True)
class CveFeedRecord:
    name: str
    sha256: str
    packages: int
    cves: int
    imported_at: str


def get_cve_feed(tx: Session) -> CveFeedRecord | None:
    row = tx.get(models.CveFeed, 1)
    if row is None:
        return None
    return CveFeedRecord(row.name, row.sha256, row.packages, row.cves, row.imported_at)


def replace_cve_feed(
    tx: Session, feed: CveFeedRecord, advisories: Mapping[str, tuple[Advisory, ...]]
) -> None:
    """Make ``feed`` the imported one, its advisories replacing every earlier one (in the
    caller's transaction: all of it or none)."""
    tx.execute(delete(models.CveAdvisory))
    tx.execute(delete(models.CveFeed))
    rows = [
        {
            "package": pkg,
            "advisories": [[a.cve, a.release, a.status, a.fixed_version, a.urgency] for a in items],
        }
        for pkg, items in advisories.items()
    ]
    for start in range(0, len(rows), 1000):
        tx.execute(insert(models.CveAdvisory), rows[start : start + 1000])
    tx.add(
        models.CveFeed(
            feed_id=1,
            name=feed.name,
            sha256=feed.sha256,
            packages=feed.packages,
            cves=feed.cves,
            imported_at=feed.imported_at,
        )
    )
    tx.flush()


def advisories_for(tx: Session, packages: Iterable[str]) -> dict[str, tuple[Advisory, ...]]:
    """The imported advisories of the source ``packages`` (those the feed names)."""
    names = sorted(set(packages))
    out: dict[str, tuple[Advisory, ...]] = {}
    for start in range(0, len(names), 500):
        rows = tx.scalars(
            select(models.CveAdvisory).where(
                models.CveAdvisory.package.in_(names[start : start + 500])
            )
        )
        for row in rows:
            out[row.package] = tuple(
                Advisory(str(c), str(r), str(s), None if f is None else str(f), str(u))
                for c, r, s, f, u in row.advisories
            )
    return out
