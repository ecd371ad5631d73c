"""Which checks a scan runs: ``cis`` (the checks with a CIS section), ``marketplace`` (those
with an AWS Marketplace requirement), ``all``, or a policy file (JSON)::

    {"name": "prod", "checks": ["ssh.permit-root-login", "secrets.private-key"],
     "severities": {"ssh.password-authentication": "high"}}

``checks`` defaults to every check; ``severities`` overrides a check's severity."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from kiln.scan.checks import SEVERITIES, Check

BUILTIN = ("all", "cis", "marketplace")


class PolicyError(ValueError):
    """A policy that names no known check, an unknown severity, or is not JSON."""


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    check_ids: tuple[str, ...] | None = None  # None: every check
    severities: Mapping[str, str] = field(default_factory=dict)

    def select(self, table: Sequence[Check]) -> list[Check]:
        if self.name == "cis":
            return [c for c in table if c.cis]
        if self.name == "marketplace":
            return [c for c in table if c.marketplace]
        if self.check_ids is None:
            return list(table)
        wanted = set(self.check_ids)
        return [c for c in table if c.check_id in wanted]

    def severity(self, check: Check) -> str:
        return self.severities.get(check.check_id, check.severity)


def builtin_policy(name: str) -> Policy:
    if name not in BUILTIN:
        raise PolicyError(f"unknown policy {name!r}: use {', '.join(BUILTIN)} or a policy file")
    return Policy(name)


def parse_policy(text: str, source: str, table: Sequence[Check]) -> Policy:
    """A policy file's policy; raises PolicyError naming ``source`` and the field."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise PolicyError(f"{source}: not JSON: {e}") from e
    if not isinstance(doc, dict):
        raise PolicyError(f"{source}: a policy is a JSON object")
    unknown = set(doc) - {"name", "checks", "severities"}
    if unknown:
        raise PolicyError(f"{source}: unknown field {sorted(unknown)[0]!r}")
    known = {c.check_id for c in table}
    ids = doc.get("checks")
    if ids is not None:
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise PolicyError(f"{source}: 'checks' is a list of check ids")
        for i in ids:
            if i not in known:
                raise PolicyError(f"{source}: 'checks': unknown check {i!r}")
    sev = doc.get("severities", {})
    if not isinstance(sev, dict):
        raise PolicyError(f"{source}: 'severities' maps check ids to severities")
    for k, v in sev.items():
        if k not in known:
            raise PolicyError(f"{source}: 'severities': unknown check {k!r}")
        if v not in SEVERITIES:
            raise PolicyError(f"{source}: 'severities': {k}: unknown severity {v!r}")
    name = doc.get("name", source)
    return Policy(str(name), tuple(ids) if ids is not None else None, dict(sev))
