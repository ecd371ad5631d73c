"""Debian's security-tracker JSON (docs/sbom.md#cve-feed): parsed whole, or refused whole, and
matched against an inventory offline with Debian's version ordering.

The feed is ``{"SOURCE-PACKAGE": {"CVE-ID": {"releases": {"bookworm": {"status":
"resolved"|"open"|"undetermined", "fixed_version": "…", "urgency": "…"}}}}}`` (other members,
``description``, ``scope``, ``repositories``…, are allowed and not kept).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from debian.debian_support import Version

from kiln.scan.packages import Inventory

STATUSES = frozenset({"resolved", "open", "undetermined"})
#: Debian's urgency -> EC2's SeverityLabel (GetImageFindings).
SEVERITY = {
    "high": "high",
    "medium": "medium",
    "low": "low",
    "unimportant": "informational",
    "end-of-life": "medium",
    "not yet assigned": "medium",
}
NOT_AFFECTED = "0"  # fixed_version "0": the release never had the bug


class FeedError(Exception):
    """The feed does not parse; the text names the field."""


@dataclass(frozen=True, slots=True)
class Advisory:
    """One CVE of one source package in one release."""

    cve: str
    release: str
    status: str
    fixed_version: str | None
    urgency: str


@dataclass(frozen=True, slots=True)
class Feed:
    """The parsed feed: source package -> its advisories (every release)."""

    packages: Mapping[str, tuple[Advisory, ...]]

    @property
    def cve_count(self) -> int:
        return len({a.cve for advisories in self.packages.values() for a in advisories})


def _obj(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise FeedError(f"{where} is not an object")
    return value


def parse_feed(data: bytes, name: str) -> Feed:
    """The feed in ``data`` (the file ``name``). :raises FeedError: naming the first field
    that does not parse; nothing of the feed is taken then."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise FeedError(f"{name} is not JSON: {e}") from e
    packages: dict[str, tuple[Advisory, ...]] = {}
    for pkg, cves in _obj(doc, name).items():
        advisories = []
        for cve, entry in _obj(cves, f"{name}: {pkg}").items():
            where = f"{name}: {pkg} {cve}"
            releases = _obj(_obj(entry, where).get("releases", {}), f"{where} releases")
            for release, info in releases.items():
                advisories.append(_advisory(cve, release, _obj(info, f"{where} {release}"), where))
        packages[pkg] = tuple(advisories)
    if not packages:
        raise FeedError(f"{name} names no package")
    return Feed(packages)


def _advisory(cve: str, release: str, info: dict[str, object], where: str) -> Advisory:
    status = info.get("status")
    if status not in STATUSES:
        raise FeedError(
            f"{where} {release}: status {status!r} is not one of {', '.join(sorted(STATUSES))}"
        )
    fixed = info.get("fixed_version")
    if fixed is not None:
        if not isinstance(fixed, str):
            raise FeedError(f"{where} {release}: fixed_version is not a string")
        try:
            Version(fixed)
        except ValueError as e:
            raise FeedError(
                f"{where} {release}: fixed_version {fixed!r} is not a Debian version"
            ) from e
    urgency = info.get("urgency", "not yet assigned")
    if not isinstance(urgency, str):
        raise FeedError(f"{where} {release}: urgency is not a string")
    return Advisory(cve, release, str(status), fixed, urgency)


@dataclass(frozen=True, slots=True)
class CveFinding:
    cve: str
    package: str  # the binary package installed
    source: str  # its source package (the feed's key)
    installed_version: str
    fixed_version: str | None  # None: no fix yet
    urgency: str
    path: str

    @property
    def severity(self) -> str:
        return SEVERITY.get(self.urgency.rstrip("*").strip(), "medium")

    @property
    def title(self) -> str:
        fixed = f"fixed in {self.fixed_version}" if self.fixed_version else "no fix yet"
        return f"{self.cve} in {self.package} {self.installed_version} ({fixed})"


def match(
    inventory: Inventory, advisories: Mapping[str, tuple[Advisory, ...]]
) -> tuple[CveFinding, ...]:
    """The CVEs ``inventory``'s packages have in its release (by codename): an ``open`` one
    always, a ``resolved`` one while the installed source version is older than the fix
    (Debian's ordering). ``undetermined`` and fixed-in-``0`` are not findings."""
    release = inventory.os.codename
    found = []
    for pkg in inventory.packages:
        if pkg.kind != "deb":
            continue
        try:
            installed = Version(pkg.source_version)
        except ValueError:  # dpkg would not have installed it; nothing to compare
            continue
        for a in advisories.get(pkg.source, ()):
            if a.release != release:
                continue
            if a.status == "open":
                fixed = None
            elif a.status == "resolved" and a.fixed_version not in (None, NOT_AFFECTED):
                if installed >= Version(str(a.fixed_version)):
                    continue
                fixed = a.fixed_version
            else:
                continue
            found.append(
                CveFinding(
                    a.cve, pkg.name, pkg.source, pkg.version, fixed, a.urgency or "", pkg.path
                )
            )
    return tuple(sorted(found, key=lambda f: (f.cve, f.package)))
