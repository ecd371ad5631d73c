"""The Recycle Bin end to end: retention rules through an unmodified boto3 ``rbin`` client and
the AWS CLI, deregistered images kept and restored through ``ec2``, and the purge after the
retention, with time made to pass honestly: ``kiln serve`` restarted with
``--recycle-bin-clock-offset`` (docs/recycle-bin.md#time). Also GetImageAncestry across regions.

One server for the module (SQLite), restarted once. Rules live in eu-west-1 (the lock tests),
the images kept in the bin in us-east-1, so each region's rules are the ones its test made.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from api_live import TEST_IMPORT_ARGS, Creds, LiveKiln, make_disk
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import ClientError
from shape_values import random_value

EAST, WEST = "us-east-1", "eu-west-1"
DAY = 86400
WAIT = 300.0  # guards against hanging, never a speed requirement


@dataclass
class BinWorld:
    kiln: LiveKiln
    owner: Creds
    other: Creds

    def ec2(self, region: str = EAST, creds: Creds | None = None) -> Any:
        return self.kiln.client(creds or self.owner, region)

    def rbin(self, region: str = WEST, creds: Creds | None = None) -> Any:
        return self.kiln.client(creds or self.owner, region, service="rbin")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BinWorld]:
    kiln = LiveKiln(tmp_path_factory.mktemp("kiln-rbin"), None)
    kiln.start()
    try:
        yield BinWorld(kiln, kiln.account("owner"), kiln.account("other"))
    finally:
        kiln.stop()


def _until(what: str, probe: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + WAIT
    while not (got := probe()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return got


def _error(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(ClientError) as e:
        call()
    return dict(e.value.response)


def _image(world: BinWorld, name: str, tags: dict[str, str] | None = None) -> tuple[str, str]:
    disk = make_disk(
        world.kiln.data_dir / f"{name}.raw", seed=secrets.token_bytes(8)
    )  # chunks no other image shares
    snap = world.kiln.snapshot(world.owner, disk, EAST)
    spec = [
        {"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}
    ]
    image_id = world.ec2().register_image(
        Name=name,
        RootDeviceName="/dev/xvda",
        VirtualizationType="hvm",
        Architecture="x86_64",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}],
        **({"TagSpecifications": spec} if tags else {}),
    )["ImageId"]
    return image_id, snap


def _gc(world: BinWorld) -> dict[str, Any]:
    res = world.kiln.kiln(
        "store", "gc", "--region", EAST, "--data-dir", str(world.kiln.data_dir),
        "--grace-seconds", "0", "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return dict(json.loads(res.stdout))


def test_rules_crud_tags_and_errors(world: BinWorld) -> None:
    rbin = world.rbin()
    made = rbin.create_rule(
        ResourceType="EC2_IMAGE",
        Description="keep AMIs",
        RetentionPeriod={"RetentionPeriodValue": 3, "RetentionPeriodUnit": "DAYS"},
        ResourceTags=[{"ResourceTagKey": "bin", "ResourceTagValue": "yes"}],
        Tags=[{"Key": "team", "Value": "a"}],
    )
    rid = made["Identifier"]
    assert made["ResponseMetadata"]["HTTPStatusCode"] == 201 and made["Status"] == "available"
    assert made["RuleArn"] == f"arn:aws:rbin:{WEST}:{world.owner.account_id}:rule/{rid}"
    got = rbin.get_rule(Identifier=rid)
    assert got["ResourceTags"] == [{"ResourceTagKey": "bin", "ResourceTagValue": "yes"}]
    assert got["RetentionPeriod"] == {"RetentionPeriodValue": 3, "RetentionPeriodUnit": "DAYS"}
    second = rbin.create_rule(
        ResourceType="EC2_IMAGE",
        RetentionPeriod={"RetentionPeriodValue": 1, "RetentionPeriodUnit": "DAYS"},
    )["Identifier"]
    assert rbin.list_rules(ResourceType="EBS_SNAPSHOT")["Rules"] == []
    first = rbin.list_rules(ResourceType="EC2_IMAGE", MaxResults=1)
    rest = rbin.list_rules(ResourceType="EC2_IMAGE", NextToken=first["NextToken"])
    assert [r["Identifier"] for r in first["Rules"] + rest["Rules"]] == [rid, second]
    assert "NextToken" not in rest
    tagged = rbin.list_rules(
        ResourceType="EC2_IMAGE",
        ResourceTags=[{"ResourceTagKey": "bin", "ResourceTagValue": "yes"}],
    )["Rules"]
    assert [r["Identifier"] for r in tagged] == [rid]
    updated = rbin.update_rule(
        Identifier=rid,
        Description="keep them longer",
        RetentionPeriod={"RetentionPeriodValue": 5, "RetentionPeriodUnit": "DAYS"},
    )
    assert updated["Description"] == "keep them longer"
    assert rbin.get_rule(Identifier=rid)["RetentionPeriod"]["RetentionPeriodValue"] == 5
    arn = made["RuleArn"]
    rbin.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "prod"}])
    rbin.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert rbin.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "prod"}]

    before = rbin.list_rules(ResourceType="EC2_IMAGE")["Rules"]
    refused = [
        (
            lambda: rbin.get_rule(Identifier="a0000000000"),
            "ResourceNotFoundException", 404, "RULE_NOT_FOUND", "a0000000000",
        ),
        (
            lambda: world.rbin(creds=world.other).delete_rule(Identifier=rid),
            "ResourceNotFoundException", 404, "RULE_NOT_FOUND", rid,
        ),
        (
            lambda: rbin.create_rule(
                ResourceType="EC2_IMAGE",
                RetentionPeriod={"RetentionPeriodValue": 400, "RetentionPeriodUnit": "DAYS"},
            ),
            "ValidationException", 400, "INVALID_PARAMETER_VALUE", "RetentionPeriodValue",
        ),
        (
            lambda: rbin.create_rule(
                ResourceType="EC2_IMAGE",
                RetentionPeriod={"RetentionPeriodValue": 1, "RetentionPeriodUnit": "DAYS"},
                ResourceTags=[{"ResourceTagKey": "a"}],
                ExcludeResourceTags=[{"ResourceTagKey": "b"}],
            ),
            "ValidationException", 400, "INVALID_PARAMETER_VALUE", "ExcludeResourceTags",
        ),
        (
            lambda: rbin.update_rule(Identifier=rid, ResourceType="EBS_SNAPSHOT"),
            "ValidationException", 400, "INVALID_PARAMETER_VALUE", "ResourceType",
        ),
        (
            lambda: rbin.list_rules(ResourceType="EC2_IMAGE", NextToken="bogus"),
            "ValidationException", 400, "INVALID_PAGE_TOKEN", "bogus",
        ),
        (
            lambda: rbin.lock_rule(
                Identifier=rid,
                LockConfiguration={"UnlockDelay": {"UnlockDelayValue": 7, "UnlockDelayUnit": "DAYS"}},
            ),
            "ValidationException", 400, "INVALID_PARAMETER_VALUE", "tag-level",
        ),
    ]  # fmt: skip
    for call, code, status, reason, named in refused:
        err = _error(call)
        assert err["Error"]["Code"] == code and err["ResponseMetadata"]["HTTPStatusCode"] == status
        assert err["Reason"] == reason and named in err["Error"]["Message"]
    assert rbin.list_rules(ResourceType="EC2_IMAGE")["Rules"] == before
    assert rbin.get_rule(Identifier=rid)["Description"] == "keep them longer"

    rbin.delete_rule(Identifier=rid)
    assert _error(lambda: rbin.get_rule(Identifier=rid))["Reason"] == "RULE_NOT_FOUND"


def test_a_locked_rule_cannot_change_until_the_unlock_delay_passed(world: BinWorld) -> None:
    rbin = world.rbin()
    rid = rbin.create_rule(
        ResourceType="EC2_IMAGE",
        RetentionPeriod={"RetentionPeriodValue": 2, "RetentionPeriodUnit": "DAYS"},
        Description="locked",
    )["Identifier"]
    locked = rbin.lock_rule(
        Identifier=rid,
        LockConfiguration={"UnlockDelay": {"UnlockDelayValue": 7, "UnlockDelayUnit": "DAYS"}},
    )
    assert locked["LockState"] == "locked"
    assert locked["LockConfiguration"]["UnlockDelay"]["UnlockDelayValue"] == 7
    for call in (
        lambda: rbin.delete_rule(Identifier=rid),
        lambda: rbin.update_rule(Identifier=rid, Description="changed"),
    ):
        err = _error(call)
        assert (err["Error"]["Code"], err["Reason"]) == ("ConflictException", "INVALID_RULE_STATE")
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 409
    unlocked = rbin.unlock_rule(Identifier=rid)
    assert unlocked["LockState"] == "pending_unlock"
    assert unlocked["LockEndTime"].timestamp() - time.time() > 6 * DAY
    err = _error(lambda: rbin.delete_rule(Identifier=rid))
    assert err["Reason"] == "INVALID_RULE_STATE" and "pending_unlock" in err["Error"]["Message"]
    assert rbin.get_rule(Identifier=rid)["Description"] == "locked"
    listed = world.kiln.aws(
        world.owner, "list-rules", "--resource-type", "EC2_IMAGE",
        "--lock-state", "pending_unlock", service="rbin", region=WEST,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert [r["Identifier"] for r in json.loads(listed.stdout)["Rules"]] == [rid]


@dataclass
class Binned:
    kept: str
    kept_snap: str
    excluded: str
    excluded_snap: str
    locked_rule: str


@pytest.fixture(scope="module")
def binned(world: BinWorld) -> Binned:
    rbin = world.rbin(EAST)
    rbin.create_rule(
        ResourceType="EC2_IMAGE",
        RetentionPeriod={"RetentionPeriodValue": 1, "RetentionPeriodUnit": "DAYS"},
        ExcludeResourceTags=[{"ResourceTagKey": "recycle", "ResourceTagValue": "no"}],
    )
    kept, kept_snap = _image(world, "kept-image")
    excluded, excluded_snap = _image(world, "excluded-image", {"recycle": "no"})
    ec2 = world.ec2()
    ec2.deregister_image(ImageId=kept, DeleteAssociatedSnapshots=True)
    ec2.deregister_image(ImageId=excluded)
    locked = [
        r["Identifier"]
        for r in world.rbin().list_rules(ResourceType="EC2_IMAGE", LockState="pending_unlock")[
            "Rules"
        ]
    ]
    return Binned(kept, kept_snap, excluded, excluded_snap, locked[0])


def test_a_deregistered_image_a_rule_keeps_is_in_the_bin_with_its_snapshot(
    world: BinWorld, binned: Binned
) -> None:
    ec2 = world.ec2()
    in_bin = ec2.list_images_in_recycle_bin()["Images"]
    assert [i["ImageId"] for i in in_bin] == [binned.kept]
    entry = in_bin[0]
    assert entry["Name"] == "kept-image"
    assert (entry["RecycleBinExitTime"] - entry["RecycleBinEnterTime"]).total_seconds() == DAY
    mine = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    assert binned.kept not in mine and binned.excluded not in mine
    assert ec2.describe_snapshots(SnapshotIds=[binned.kept_snap])["Snapshots"][0]["State"] == (
        "completed"
    )
    err = _error(lambda: ec2.delete_snapshot(SnapshotId=binned.kept_snap))
    assert err["Error"]["Code"] == "InvalidSnapshot.InUse"
    cli = world.kiln.aws(world.owner, "list-images-in-recycle-bin", "--image-ids", binned.kept)
    assert cli.returncode == 0, cli.stderr
    assert [i["ImageId"] for i in json.loads(cli.stdout)["Images"]] == [binned.kept]
    # nothing another account, or a bad id, can do to it
    other = world.ec2(creds=world.other)
    assert other.list_images_in_recycle_bin()["Images"] == []
    for call, code in (
        (lambda: other.restore_image_from_recycle_bin(ImageId=binned.kept), "InvalidAMIID.NotFound"),
        (lambda: ec2.restore_image_from_recycle_bin(ImageId=binned.excluded), "InvalidAMIID.NotFound"),
        (lambda: ec2.restore_image_from_recycle_bin(ImageId="ami-nope"), "InvalidAMIID.Malformed"),
        (lambda: ec2.restore_image_from_recycle_bin(ImageId=binned.kept, DryRun=True), "DryRunOperation"),
    ):  # fmt: skip
        assert _error(call)["Error"]["Code"] == code
    assert [i["ImageId"] for i in ec2.list_images_in_recycle_bin()["Images"]] == [binned.kept]
    # held chunks are not garbage
    assert _gc(world)["chunks_deleted"] == 0


def test_restore_brings_the_image_back_and_it_can_go_to_the_bin_again(
    world: BinWorld, binned: Binned
) -> None:
    ec2 = world.ec2()
    assert ec2.restore_image_from_recycle_bin(ImageId=binned.kept)["Return"] is True
    image = ec2.describe_images(ImageIds=[binned.kept])["Images"][0]
    assert image["State"] == "available"
    assert image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == binned.kept_snap
    assert ec2.list_images_in_recycle_bin()["Images"] == []
    ec2.deregister_image(ImageId=binned.kept, DeleteAssociatedSnapshots=True)
    assert [i["ImageId"] for i in ec2.list_images_in_recycle_bin()["Images"]] == [binned.kept]


def test_get_image_ancestry_follows_copies_across_regions(world: BinWorld) -> None:
    root, _ = _image(world, "ancestor")
    east, west = world.ec2(EAST), world.ec2(WEST)

    def available(ec2: Any, image_id: str) -> None:
        _until(
            image_id,
            lambda: ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"] == "available",
        )

    copy = west.copy_image(SourceImageId=root, SourceRegion=EAST, Name="copy-west")["ImageId"]
    available(west, copy)
    copy2 = east.copy_image(SourceImageId=copy, SourceRegion=WEST, Name="copy-east")["ImageId"]
    available(east, copy2)
    chain = east.get_image_ancestry(ImageId=copy2)["ImageAncestryEntries"]
    assert [(e["ImageId"], e.get("SourceImageId"), e.get("SourceImageRegion")) for e in chain] == [
        (copy2, copy, WEST),
        (copy, root, EAST),
        (root, None, None),
    ]
    cli = world.kiln.aws(world.owner, "get-image-ancestry", "--image-id", copy2)
    assert cli.returncode == 0, cli.stderr
    entries = json.loads(cli.stdout)["ImageAncestryEntries"]
    assert [e["ImageId"] for e in entries] == [copy2, copy, root]
    assert _error(lambda: east.get_image_ancestry(ImageId="ami-0123456789abcdef0"))["Error"][
        "Code"
    ] == ("InvalidAMIID.NotFound")


@pytest.fixture(scope="module")
def later(world: BinWorld, binned: Binned) -> BinWorld:
    """The server restarted with its Recycle Bin clock 8 days ahead: past the retention and
    the unlock delay. The purge runs at startup, from the catalog alone."""
    world.kiln.stop()
    world.kiln.serve_args = (*TEST_IMPORT_ARGS, "--recycle-bin-clock-offset", str(8 * DAY))
    world.kiln.start()
    return world


def test_past_retention_the_image_is_purged_and_gc_reclaims_its_chunks(
    later: BinWorld, binned: Binned
) -> None:
    ec2 = later.ec2()
    _until("the purge", lambda: ec2.list_images_in_recycle_bin()["Images"] == [])
    err = _error(lambda: ec2.describe_snapshots(SnapshotIds=[binned.kept_snap]))
    assert err["Error"]["Code"] == "InvalidSnapshot.NotFound"
    assert _error(lambda: ec2.restore_image_from_recycle_bin(ImageId=binned.kept))["Error"][
        "Code"
    ] == ("InvalidAMIID.NotFound")
    # the excluded image's snapshot was never asked to go
    assert ec2.describe_snapshots(SnapshotIds=[binned.excluded_snap])["Snapshots"]
    assert _gc(later)["chunks_deleted"] > 0


def test_after_the_unlock_delay_the_rule_can_be_deleted(later: BinWorld, binned: Binned) -> None:
    rbin = later.rbin()
    assert rbin.get_rule(Identifier=binned.locked_rule)["LockState"] == "unlocked"
    rbin.delete_rule(Identifier=binned.locked_rule)
    assert _error(lambda: rbin.get_rule(Identifier=binned.locked_rule))["Reason"] == (
        "RULE_NOT_FOUND"
    )


def test_every_rbin_action_random_and_mistyped_input_never_fails_inside(later: BinWorld) -> None:
    """Random well-shaped input for each rbin operation (botocore's model), then each member
    given a value of the wrong type: answers are rbin's 4xx errors, never a 5xx or a traceback.
    Its own region, so what it creates touches no other test."""
    region = "ca-central-1"
    valid = later.kiln.client(later.owner, region, service="rbin")
    loose = boto3.client(
        "rbin",
        endpoint_url=later.kiln.url,
        region_name=region,
        aws_access_key_id=later.owner.access_key_id,
        aws_secret_access_key=later.owner.secret_access_key,
        config=Config(retries={"max_attempts": 1}, parameter_validation=False),
    )
    model = valid.meta.service_model
    rng = random.Random(12)
    statuses: list[int] = []
    for name in model.operation_names:
        op = model.operation_model(name)
        method = getattr(valid, xform_name(name))
        for _ in range(15):
            params = random_value(op.input_shape, rng) if op.input_shape else {}
            statuses.append(_status(method, params))
            for member in list(params):
                kind = op.input_shape.members[member].type_name
                if kind in ("structure", "list"):
                    continue  # botocore's serializer itself cannot write a scalar there
                bad = {**params, member: 12345 if kind == "string" else "not-a-number"}
                statuses.append(_status(getattr(loose, xform_name(name)), bad))
    assert max(statuses) < 500 and {200, 201, 204} & set(statuses), sorted(set(statuses))
    assert "Traceback" not in later.kiln.log()


def _status(call: Callable[..., Any], params: dict[str, Any]) -> int:
    try:
        return int(call(**params)["ResponseMetadata"]["HTTPStatusCode"])
    except ClientError as e:
        return int(e.response["ResponseMetadata"]["HTTPStatusCode"])
