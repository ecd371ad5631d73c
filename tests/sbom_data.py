"""Fake dpkg databases and a small security-tracker feed for the SBOM and CVE tests
(docs/sbom.md): two versions of an image (openssl upgraded, curl added, zlib1g removed) and a
feed that flags the old openssl, not the new one."""

from __future__ import annotations

import json
from pathlib import Path

from scan_disks import CLEAN, Files


def _para(name: str, version: str, arch: str = "amd64", source: str | None = None) -> str:
    lines = [
        f"Package: {name}",
        "Status: install ok installed",
        "Priority: optional",
        f"Architecture: {arch}",
    ]
    if source:
        lines.append(f"Source: {source}")
    lines += [f"Version: {version}", f"Description: {name} for the tests", " more text", ""]
    return "\n".join(lines) + "\n"


REMOVED_PARA = (
    "Package: oldtool\nStatus: deinstall ok config-files\nArchitecture: amd64\n"
    "Version: 1.0-1\nDescription: removed, its config kept\n\n"
)

V1 = {
    "bash": ("5.2.15-2+b2", "amd64", "bash (5.2.15-2)"),
    "libssl3": ("3.0.11-1~deb12u1", "amd64", "openssl"),
    "openssl": ("3.0.11-1~deb12u1", "amd64", None),
    "zlib1g": ("1:1.2.13.dfsg-1", "amd64", "zlib"),
    "tzdata": ("2024a-0+deb12u1", "all", None),
}
V2 = {
    **{k: v for k, v in V1.items() if k != "zlib1g"},
    "libssl3": ("3.0.13-1~deb12u1", "amd64", "openssl"),
    "openssl": ("3.0.13-1~deb12u1", "amd64", None),
    "curl": ("7.88.1-10+deb12u5", "amd64", None),
}


def dpkg_status(packages: dict[str, tuple[str, str, str | None]]) -> str:
    paras = [_para(n, v, a, s) for n, (v, a, s) in sorted(packages.items())]
    return "".join(paras[:1]) + REMOVED_PARA + "".join(paras[1:])


def debian_root(packages: dict[str, tuple[str, str, str | None]]) -> Files:
    return {**CLEAN, "var/lib/dpkg/status": (dpkg_status(packages), 0o644)}


FEED = {
    "openssl": {
        "CVE-2024-0727": {
            "description": "PKCS12 NULL dereference",
            "releases": {
                "bookworm": {
                    "status": "resolved",
                    "repositories": {"bookworm": "3.0.13-1~deb12u1"},
                    "fixed_version": "3.0.13-1~deb12u1",
                    "urgency": "medium",
                },
                "bullseye": {"status": "open", "urgency": "low"},
            },
        },
        "CVE-2023-2650": {
            "releases": {
                "bookworm": {
                    "status": "resolved",
                    "fixed_version": "3.0.9-1",
                    "urgency": "not yet assigned",
                }
            }
        },
    },
    "bash": {
        "CVE-2022-3715": {
            "releases": {"bookworm": {"status": "open", "urgency": "unimportant"}},
        }
    },
    "zlib": {
        "CVE-2023-45853": {
            "releases": {"bookworm": {"status": "resolved", "fixed_version": "0"}},
        }
    },
    "curl": {"CVE-2024-2398": {"releases": {"trixie": {"status": "open"}}}},
}
#: (CVE, binary package) the feed flags in V1; V2 has openssl's fix.
V1_FINDINGS = {
    ("CVE-2022-3715", "bash"),
    ("CVE-2024-0727", "libssl3"),
    ("CVE-2024-0727", "openssl"),
}
V2_FINDINGS = {("CVE-2022-3715", "bash")}


def write_feed(path: Path, feed: object = FEED) -> Path:
    path.write_text(json.dumps(feed))
    return path
