"""Snapshots and volumes over HTTP with unmodified boto3 and the AWS CLI against a live
`kiln serve`: describe/filter/paginate, sharing via createVolumePermission, DeleteSnapshot
InUse, CopySnapshot, CreateVolume / CreateSnapshot of a volume (changed blocks only)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from api_live import ApiWorld
from botocore.exceptions import ClientError
from test_api_import import import_snapshot, register
from test_api_snapshots_support import (
    MIB,
    export_snapshot_cli,
    patch_file,
    patterned_disk,
    qemu_io_write,
    same_bytes,
    wait_snapshot,
    wait_volume,
)

US, EU = "us-east-1", "eu-west-1"


def uniq(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def code(e: pytest.ExceptionInfo[ClientError]) -> str:
    return str(e.value.response["Error"]["Code"])


def ids(resp: dict) -> list[str]:  # type: ignore[type-arg]
    return [s["SnapshotId"] for s in resp["Snapshots"]]


@pytest.fixture
def snap(api: ApiWorld, tmp_path: Path) -> str:
    disk = patterned_disk(tmp_path / "snap.raw", size=4 * MIB, seed=uniq("snap"))
    return import_snapshot(api.kiln.client(api.owner), str(disk))


def test_delete_snapshot_in_use_by_an_image(api: ApiWorld, snap: str) -> None:
    ec2 = api.kiln.client(api.owner)
    image = register(ec2, snap, uniq("inuse"))
    with pytest.raises(ClientError) as e:
        ec2.delete_snapshot(SnapshotId=snap)
    assert code(e) == "InvalidSnapshot.InUse"
    assert image in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        api.kiln.client(api.stranger).delete_snapshot(SnapshotId=snap)
    assert code(e) == "InvalidSnapshot.NotFound"
    ec2.deregister_image(ImageId=image)
    with pytest.raises(ClientError) as e:
        ec2.delete_snapshot(SnapshotId=snap, DryRun=True)
    assert code(e) == "DryRunOperation"
    ec2.delete_snapshot(SnapshotId=snap)
    with pytest.raises(ClientError) as e:
        ec2.describe_snapshots(SnapshotIds=[snap])
    assert code(e) == "InvalidSnapshot.NotFound"
    with pytest.raises(ClientError) as e:
        ec2.delete_snapshot(SnapshotId="snap-xyz")
    assert code(e) == "InvalidSnapshotID.Malformed"


def test_share_snapshot_with_create_volume_permission(api: ApiWorld, snap: str) -> None:
    owner, grantee, stranger = (api.kiln.client(c) for c in (api.owner, api.grantee, api.stranger))

    def restorable(ec2, who: str = "self") -> list[str]:  # type: ignore[no-untyped-def]
        return ids(ec2.describe_snapshots(RestorableByUserIds=[who]))

    assert snap not in restorable(grantee)
    with pytest.raises(ClientError) as e:
        grantee.describe_snapshots(SnapshotIds=[snap])
    assert code(e) == "InvalidSnapshot.NotFound"
    owner.modify_snapshot_attribute(
        SnapshotId=snap, CreateVolumePermission={"Add": [{"UserId": api.grantee.account_id}]}
    )
    assert snap in restorable(grantee)
    assert snap in ids(grantee.describe_snapshots(OwnerIds=[api.owner.account_id]))
    assert ids(grantee.describe_snapshots(SnapshotIds=[snap])) == [snap]
    assert snap not in ids(grantee.describe_snapshots(OwnerIds=["self"]))
    attr = owner.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    assert attr["CreateVolumePermissions"] == [{"UserId": api.grantee.account_id}]
    # The stranger never sees it, and the grantee may use it but not change it.
    assert snap not in restorable(stranger) and snap not in restorable(stranger, "all")
    assert snap not in ids(stranger.describe_snapshots(OwnerIds=[api.owner.account_id]))
    with pytest.raises(ClientError) as e:
        stranger.describe_snapshots(SnapshotIds=[snap])
    assert code(e) == "InvalidSnapshot.NotFound"
    with pytest.raises(ClientError) as e:
        stranger.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    assert code(e) == "InvalidSnapshot.NotFound"
    for call in (
        lambda: grantee.delete_snapshot(SnapshotId=snap),
        lambda: grantee.modify_snapshot_attribute(
            SnapshotId=snap,
            Attribute="createVolumePermission",
            OperationType="add",
            UserIds=[api.stranger.account_id],
        ),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == "AuthFailure"
    # The older form (OperationType + UserIds) removes the grant; group all makes it public.
    owner.modify_snapshot_attribute(
        SnapshotId=snap,
        Attribute="createVolumePermission",
        OperationType="remove",
        UserIds=[api.grantee.account_id],
    )
    assert snap not in restorable(grantee)
    owner.modify_snapshot_attribute(
        SnapshotId=snap, CreateVolumePermission={"Add": [{"Group": "all"}]}
    )
    assert snap in restorable(stranger, "all")
    assert snap in ids(stranger.describe_snapshots(SnapshotIds=[snap]))
    owner.reset_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    assert snap not in restorable(stranger, "all")
    assert (
        owner.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")[
            "CreateVolumePermissions"
        ]
        == []
    )
    with pytest.raises(ClientError) as e:
        owner.modify_snapshot_attribute(
            SnapshotId=snap, CreateVolumePermission={"Add": [{"UserId": "12345"}]}
        )
    assert code(e) == "InvalidUserID.Malformed"


def test_describe_snapshots_filters_and_pages(api: ApiWorld, tmp_path: Path) -> None:
    ec2 = api.kiln.client(api.owner)
    family = uniq("fam")
    made = []
    for n in range(6):
        disk = patterned_disk(tmp_path / f"d{n}.raw", size=2 * MIB, seed=f"{family}-{n}")
        sid = import_snapshot(ec2, str(disk), Description=f"{family}-{n}")
        ec2.create_tags(Resources=[sid], Tags=[{"Key": "team", "Value": "ops" if n % 2 else "dev"}])
        made.append(sid)
    by_desc = ids(
        ec2.describe_snapshots(Filters=[{"Name": "description", "Values": [f"{family}-*"]}])
    )
    assert sorted(by_desc) == sorted(made)
    ops = ids(
        ec2.describe_snapshots(
            Filters=[
                {"Name": "description", "Values": [f"{family}-?"]},
                {"Name": "tag:team", "Values": ["o?s"]},
                {"Name": "status", "Values": ["completed"]},
                {"Name": "volume-size", "Values": ["1"]},
            ]
        )
    )
    assert sorted(ops) == sorted(made[1::2])
    one = ec2.describe_snapshots(SnapshotIds=[made[0]])["Snapshots"][0]
    assert one["Tags"] == [{"Key": "team", "Value": "dev"}] and one["Description"] == f"{family}-0"
    pages = ec2.get_paginator("describe_snapshots").paginate(
        OwnerIds=["self"],
        Filters=[{"Name": "description", "Values": [f"{family}-*"]}],
        PaginationConfig={"PageSize": 5},
    )
    sizes, seen = [], []
    for page in pages:
        sizes.append(len(page["Snapshots"]))
        seen += ids(page)
    assert sorted(seen) == sorted(made) and sizes == [5, 1]
    assert (
        ids(
            api.kiln.client(api.grantee).describe_snapshots(
                Filters=[{"Name": "description", "Values": [f"{family}-*"]}]
            )
        )
        == []
    )
    for alias in ("kiln", "amazon"):  # owner aliases: the system account's snapshots only
        assert not set(made) & set(ids(ec2.describe_snapshots(OwnerIds=[alias])))
    for kwargs, expected in [
        ({"Filters": [{"Name": "colour", "Values": ["x"]}]}, "InvalidFilter"),
        ({"SnapshotIds": [made[0]], "MaxResults": 5}, "InvalidParameterCombination"),
        ({"MaxResults": 2}, "InvalidParameterValue"),
        ({"SnapshotIds": ["snap-nothex"]}, "InvalidSnapshotID.Malformed"),
        ({"SnapshotIds": ["snap-0123456789abcdef0"]}, "InvalidSnapshot.NotFound"),
        ({"OwnerIds": ["not-an-owner"]}, "InvalidUserID.Malformed"),
    ]:
        with pytest.raises(ClientError) as e:
            ec2.describe_snapshots(**kwargs)
        assert code(e) == expected, kwargs


def test_aws_cli_describe_snapshots(api: ApiWorld, snap: str) -> None:
    res = api.kiln.aws(
        api.owner, "describe-snapshots", "--owner-ids", "self", "--snapshot-ids", snap
    )
    assert res.returncode == 0, res.stderr
    found = json.loads(res.stdout)["Snapshots"]
    assert [s["SnapshotId"] for s in found] == [snap] and found[0]["State"] == "completed"
    res = api.kiln.aws(api.stranger, "describe-snapshots", "--snapshot-ids", snap)
    assert res.returncode != 0 and "InvalidSnapshot.NotFound" in res.stderr


def test_copy_snapshot_within_and_across_regions(api: ApiWorld, tmp_path: Path) -> None:
    disk = patterned_disk(tmp_path / "c.raw", size=3 * MIB, seed=uniq("copysnap"))
    us, eu = api.kiln.client(api.owner, US), api.kiln.client(api.owner, EU)
    src = import_snapshot(us, str(disk))
    local = us.copy_snapshot(SourceSnapshotId=src, SourceRegion=US)["SnapshotId"]
    done = wait_snapshot(us, local)
    assert done["State"] == "completed" and done["Description"] == f"[Copied {src} from {US}]"
    remote = eu.copy_snapshot(
        SourceSnapshotId=src,
        SourceRegion=US,
        Description="to eu",
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "v"}]}],
    )
    assert remote["Tags"] == [{"Key": "k", "Value": "v"}]
    copied = wait_snapshot(eu, remote["SnapshotId"])
    assert copied["State"] == "completed" and copied["Tags"] == [{"Key": "k", "Value": "v"}]
    out = export_snapshot_cli(api.kiln, remote["SnapshotId"], tmp_path / "eu.raw", EU)
    assert same_bytes(out, disk)
    enc = wait_snapshot(
        eu, eu.copy_snapshot(SourceSnapshotId=src, SourceRegion=US, Encrypted=True)["SnapshotId"]
    )
    assert enc["Encrypted"] is True and enc["KmsKeyId"].startswith(f"arn:aws:kms:{EU}:")
    with pytest.raises(ClientError) as e:  # an encrypted snapshot stays encrypted
        us.copy_snapshot(SourceSnapshotId=enc["SnapshotId"], SourceRegion=EU, Encrypted=False)
    assert code(e) == "InvalidParameterCombination"
    with pytest.raises(ClientError) as e:
        api.kiln.client(api.stranger, EU).copy_snapshot(SourceSnapshotId=src, SourceRegion=US)
    assert code(e) == "InvalidSnapshot.NotFound"


def test_volumes_and_snapshot_of_a_changed_volume(api: ApiWorld, snap: str, tmp_path: Path) -> None:
    ec2 = api.kiln.client(api.owner)
    vol = ec2.create_volume(
        SnapshotId=snap,
        AvailabilityZone=f"{US}a",
        VolumeType="gp3",
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "role", "Value": "data"}]}],
    )
    assert vol["State"] == "creating" and vol["SnapshotId"] == snap and vol["Size"] == 1
    ready = wait_volume(ec2, vol["VolumeId"])
    assert ready["State"] == "available" and ready["Tags"] == [{"Key": "role", "Value": "data"}]
    assert ready["VolumeType"] == "gp3" and ready["Iops"] == 3000
    listed = ec2.describe_volumes(
        Filters=[{"Name": "tag:role", "Values": ["da*"]}, {"Name": "snapshot-id", "Values": [snap]}]
    )
    assert [v["VolumeId"] for v in listed["Volumes"]] == [vol["VolumeId"]]
    # A guest writes 64 KiB at 2 MiB + 4 KiB: the snapshot stores only that change.
    overlay = api.kiln.data_dir / "regions" / US / "volumes" / f"{vol['VolumeId']}.qcow2"
    qemu_io_write(overlay, 2 * MIB + 4096, 65536, 0x5A)
    taken = ec2.create_snapshot(VolumeId=vol["VolumeId"], Description="after write")
    assert taken["State"] == "pending" and taken["VolumeId"] == vol["VolumeId"]
    child = wait_snapshot(ec2, taken["SnapshotId"])
    assert child["State"] == "completed" and child["Description"] == "after write"
    expected = tmp_path / "expected.raw"
    export_snapshot_cli(api.kiln, snap, expected, US)
    patch_file(expected, 2 * MIB + 4096, 65536, 0x5A)
    got = export_snapshot_cli(api.kiln, taken["SnapshotId"], tmp_path / "child.raw", US)
    assert same_bytes(got, expected)
    # An empty volume, then deletion.
    empty = ec2.create_volume(Size=2, AvailabilityZone=f"{US}b")
    assert wait_volume(ec2, empty["VolumeId"])["Size"] == 2
    for bad, expected_code in [
        ({"Size": 1, "AvailabilityZone": f"{EU}a"}, "InvalidZone.NotFound"),  # as EC2 says
        ({"AvailabilityZone": f"{US}a"}, "MissingParameter"),
        ({"Size": 10, "AvailabilityZone": f"{US}a", "VolumeType": "io2"}, "MissingParameter"),
        (
            {"SnapshotId": "snap-0123456789abcdef0", "AvailabilityZone": f"{US}a"},
            "InvalidSnapshot.NotFound",
        ),
    ]:
        with pytest.raises(ClientError) as e:
            ec2.create_volume(**bad)
        assert code(e) == expected_code, bad
    for vid in (vol["VolumeId"], empty["VolumeId"]):
        ec2.delete_volume(VolumeId=vid)
        with pytest.raises(ClientError) as e:
            ec2.describe_volumes(VolumeIds=[vid])
        assert code(e) == "InvalidVolume.NotFound"
    assert not overlay.exists()
    with pytest.raises(ClientError) as e:
        ec2.delete_volume(VolumeId="vol-bad")
    assert code(e) == "InvalidVolumeID.Malformed"
    with pytest.raises(ClientError) as e:
        api.kiln.client(api.stranger).create_snapshot(VolumeId=vol["VolumeId"])
    assert code(e) == "InvalidVolume.NotFound"
