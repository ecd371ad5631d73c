"""docs/jobs.md names every snapshot / volume / copy / import / export action in ACTIONS and
every EC2 error code their rules raise."""

from __future__ import annotations

import re
from pathlib import Path

import kiln.errors as errors
from kiln.ec2.actions import ACTIONS

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ("kiln.ec2.snapshots", "kiln.ec2.volumes", "kiln.ec2.tasks", "kiln.ec2.copy_image")
RULES = ["snapshots.py", "snapshot_access.py", "volumes.py", "volume_query.py",
         "volume_disks.py", "copy_image.py", "imports.py", "exports.py", "tasks.py", "kms.py",
         "disk_sources.py", "jobs.py"]


def test_every_action_is_documented() -> None:
    doc = (ROOT / "docs" / "jobs.md").read_text()
    mine = [name for name, handler in ACTIONS.items() if handler.__module__ in HANDLERS]
    assert len(mine) == 18
    assert [name for name in mine if name not in doc] == []


def test_every_error_code_is_documented() -> None:
    doc = (ROOT / "docs" / "jobs.md").read_text()
    names: set[str] = set()
    for rule in RULES:
        names |= set(re.findall(r"errors\.([A-Za-z]+)\b",
                                (ROOT / "kiln" / "services" / rule).read_text()))
    codes = {value.code for value in (getattr(errors, n, None) for n in names)
             if isinstance(value, errors.ErrorCode)}
    assert len(codes) >= 12
    assert sorted(c for c in codes if c not in doc) == []
