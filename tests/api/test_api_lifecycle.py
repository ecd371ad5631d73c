"""Lifecycle policies end to end (docs/lifecycle.md): images made through the live API with
boto3, ``kiln lifecycle apply|run`` driving them, and the scheduler inside a live ``kiln serve``
doing it on its own."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from api_live import TEST_IMPORT_ARGS, Creds, LiveKiln, make_disk

POLICY = """\
name: app-keep-two
description: deprecate all but the newest app image, delete all but the newest two
resourceType: AMI_IMAGE
policyDetails:
  - action: {type: DEPRECATE}
    filter: {type: COUNT, value: 1}
  - action:
      type: DELETE
      includeResources: {amis: true, snapshots: true}
    filter: {type: COUNT, value: 2}
resourceSelection:
  families: [app]
"""


@contextmanager
def _server(tmp_path: Path, interval: str) -> Iterator[LiveKiln]:
    kiln = LiveKiln(
        tmp_path, None, serve_args=(*TEST_IMPORT_ARGS, "--lifecycle-interval", interval)
    )
    kiln.start()
    try:
        yield kiln
    finally:
        kiln.stop()


def _images(kiln: LiveKiln, owner: Creds, names: list[str]) -> dict[str, tuple[str, str]]:
    """Register ``names`` (each from its own imported snapshot): name -> (image id, snapshot)."""
    ec2 = kiln.client(owner)
    made = {}
    for n, name in enumerate(names):
        snap = kiln.snapshot(owner, make_disk(kiln.data_dir / f"{n}.raw", seed=name.encode()))
        image_id = ec2.register_image(
            Name=name,
            RootDeviceName="/dev/xvda",
            VirtualizationType="hvm",
            Architecture="x86_64",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}],
        )["ImageId"]
        made[name] = (image_id, snap)
    return made


def _live(kiln: LiveKiln, owner: Creds) -> dict[str, dict[str, object]]:
    found = kiln.client(owner).describe_images(Owners=["self"])["Images"]
    return {str(i["Name"]): i for i in found}


def _cli(kiln: LiveKiln, *args: str) -> tuple[int, str, str]:
    res = kiln.kiln("lifecycle", *args, "--data-dir", str(kiln.data_dir))
    return res.returncode, res.stdout, res.stderr


def test_kiln_lifecycle_apply_and_run_deprecate_then_delete_by_count(tmp_path: Path) -> None:
    with _server(tmp_path, "0") as kiln:  # no scheduler: only the CLI acts
        owner = kiln.account("owner")
        made = _images(kiln, owner, ["app/1", "app/2", "app/3", "app/4", "tool/1"])
        good = tmp_path / "policy.yaml"
        good.write_text(POLICY)
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"name": "broken", "resourceType": "AMI_IMAGE"}))

        # A policy that does not parse: one line naming the field, non-zero, nothing stored.
        code, out, err = _cli(kiln, "apply", str(bad), "--account", owner.account_id)
        assert code != 0 and out == ""
        assert err.count("\n") == 1 and "policyDetails" in err
        assert "InvalidParameterValueException" in err
        code, out, _ = _cli(kiln, "list", "--json")
        assert code == 0 and json.loads(out) == []

        code, out, err = _cli(kiln, "apply", str(good), "--account", owner.account_id, "--json")
        assert code == 0, err
        applied = json.loads(out)
        assert applied["Name"] == "app-keep-two" and applied["Created"] is True

        # The dry run prints the plan as a table and changes nothing.
        code, out, err = _cli(kiln, "run", "--dry-run")
        assert code == 0, err
        for name in ("app/1", "app/2", "app/3"):
            assert made[name][0] in out
        assert made["app/4"][0] not in out and "planned" in out
        code, out, _ = _cli(kiln, "run", "--dry-run", "--json")
        (plan,) = json.loads(out)["Policies"]
        assert [(a["Action"], a["ImageName"], a["Result"]) for a in plan["Actions"]] == [
            ("DEPRECATE", "app/3", "planned"),
            ("DEPRECATE", "app/2", "planned"),
            ("DEPRECATE", "app/1", "planned"),
            ("DELETE", "app/2", "planned"),
            ("DELETE", "app/1", "planned"),
        ]
        before = _live(kiln, owner)
        assert sorted(before) == ["app/1", "app/2", "app/3", "app/4", "tool/1"]
        assert all("DeprecationTime" not in i for i in before.values())

        code, out, err = _cli(kiln, "run", "--json")
        assert code == 0, err
        (run,) = json.loads(out)["Policies"]
        assert all(a["Result"] == "done" for a in run["Actions"])
        after = _live(kiln, owner)
        assert sorted(after) == ["app/3", "app/4", "tool/1"]
        assert "DeprecationTime" in after["app/3"]
        assert "DeprecationTime" not in after["app/4"]
        assert "DeprecationTime" not in after["tool/1"]
        gone = {made["app/1"][1], made["app/2"][1]}
        snaps = kiln.client(owner).describe_snapshots(OwnerIds=["self"])["Snapshots"]
        have = {s["SnapshotId"] for s in snaps}
        assert not gone & have and made["app/3"][1] in have

        # Run again: everything is in effect already.
        code, out, _ = _cli(kiln, "run", "--json")
        (again,) = json.loads(out)["Policies"]
        assert again["Actions"] == []
        code, out, _ = _cli(kiln, "list", "--json")
        (listed,) = json.loads(out)
        assert listed["LastRunAt"] == again["StartedAt"] > run["StartedAt"]
        assert listed["Policy"]["resourceSelection"] == {"families": ["app"]}


def test_kiln_serve_runs_the_policies_on_its_own(tmp_path: Path) -> None:
    with _server(tmp_path, "1") as kiln:
        owner = kiln.account("owner")
        made = _images(kiln, owner, ["app/1", "app/2", "app/3", "app/4"])
        good = tmp_path / "policy.yaml"
        good.write_text(POLICY)
        code, _, err = _cli(kiln, "apply", str(good), "--account", owner.account_id)
        assert code == 0, err
        deadline = time.monotonic() + 120  # a guard against hanging, not a speed requirement
        while sorted(_live(kiln, owner)) != ["app/3", "app/4"]:
            assert time.monotonic() < deadline, kiln.log()
            time.sleep(0.5)
        assert "DeprecationTime" in _live(kiln, owner)["app/3"]
        code, out, _ = _cli(kiln, "list", "--json")
        (listed,) = json.loads(out)
        assert listed["LastRunAt"] is not None
        log = (kiln.data_dir / "serve.log").read_text()  # one line per image acted on
        for name in ("app/1", "app/2"):
            assert f"DELETE {made[name][0]} ({name}) done" in log
        # A new image: the next run (one interval later) leaves the newest two again.
        _images(kiln, owner, ["app/5"])
        deadline = time.monotonic() + 120
        while sorted(_live(kiln, owner)) != ["app/4", "app/5"]:
            assert time.monotonic() < deadline, kiln.log()
            time.sleep(0.5)


def _run_starts(log: str, policy: str) -> list[datetime]:
    """When each run of ``policy`` started, from the server's log lines."""
    found = re.findall(rf"lifecycle {re.escape(policy)} \([^)]*\): run started (\S+),", log)
    return [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in found]


def test_a_restarted_server_keeps_the_policy_clock(tmp_path: Path) -> None:
    """The next run after a restart starts one interval after the last run before it, as the
    catalog recorded it: not earlier, and it does happen."""
    interval = 10  # longer than a restart takes, so running at startup would show
    kiln = LiveKiln(
        tmp_path, None, serve_args=(*TEST_IMPORT_ARGS, "--lifecycle-interval", str(interval))
    )
    kiln.start()
    try:
        owner = kiln.account("owner")
        made = _images(kiln, owner, ["app/1", "app/2", "app/3", "app/4"])
        good = tmp_path / "policy.yaml"
        good.write_text(POLICY)
        code, _, err = _cli(kiln, "apply", str(good), "--account", owner.account_id)
        assert code == 0, err
        deadline = time.monotonic() + 120  # a guard against hanging, not a speed requirement
        while sorted(_live(kiln, owner)) != ["app/3", "app/4"]:
            assert time.monotonic() < deadline, kiln.log()
            time.sleep(0.5)
    finally:
        kiln.stop()
    code, out, _ = _cli(kiln, "list", "--json")
    (before,) = json.loads(out)
    last = datetime.fromisoformat(before["LastRunAt"].replace("Z", "+00:00"))
    (kiln.data_dir / "serve.log").rename(kiln.data_dir / "serve-1.log")

    kiln.start()
    try:
        _images(kiln, owner, ["app/5"])
        deadline = time.monotonic() + 120
        while sorted(_live(kiln, owner)) != ["app/4", "app/5"]:
            assert time.monotonic() < deadline, kiln.log()
            time.sleep(0.5)
        starts = _run_starts((kiln.data_dir / "serve.log").read_text(), "app-keep-two")
        assert starts and starts[0] >= last + timedelta(seconds=interval)
        assert (
            f"DELETE {made['app/3'][0]} (app/3) done" in (kiln.data_dir / "serve.log").read_text()
        )
    finally:
        kiln.stop()
