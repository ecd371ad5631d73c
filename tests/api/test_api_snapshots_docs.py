"""docs/jobs.md names every snapshot / volume / copy / import / export action in ACTIONS and
every EC2 error code their rules raise."""

from __future__ import annotations

import re
from pathlib import Path

import kiln.errors as errors
from kiln.ec2.actions import ACTIONS

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ("kiln.ec2.snapshots", "kiln.ec2.volumes", "kiln.ec2.tasks", "kiln.ec2.copy_image")
RULES = [
    "services/snapshots/snapshots.py",
    "services/snapshots/snapshot_attributes.py",
    "services/snapshots/copy_snapshot.py",
    "services/snapshots/create_snapshot.py",
    "services/snapshots/access.py",
    "services/snapshots/states.py",
    "services/snapshots/volumes.py",
    "services/snapshots/describe_volumes.py",
    "runtime/volume_disks.py",
    "services/images/copy_image.py",
    "services/tasks/import_image.py",
    "services/tasks/export_image.py",
    "services/tasks/tasks.py",
    "services/keys/kms.py",
    "services/tasks/disk_sources.py",
    "runtime/jobs.py",
]


def test_every_action_is_documented() -> None:
    doc = (ROOT / "docs" / "jobs.md").read_text()
    mine = [name for name, handler in ACTIONS.items() if handler.__module__ in HANDLERS]
    assert len(mine) == 18
    assert [name for name in mine if name not in doc] == []


def test_every_error_code_is_documented() -> None:
    doc = (ROOT / "docs" / "jobs.md").read_text()
    names: set[str] = set()
    for rule in RULES:
        names |= set(re.findall(r"errors\.([A-Za-z]+)\b", (ROOT / "kiln" / rule).read_text()))
    codes = {
        value.code
        for value in (getattr(errors, n, None) for n in names)
        if isinstance(value, errors.ErrorCode)
    }
    assert len(codes) >= 12
    assert sorted(c for c in codes if c not in doc) == []
