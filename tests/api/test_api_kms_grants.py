"""KMS grants and encrypted images across accounts, EBS encryption by default: a live
`kiln serve` driven by unmodified boto3 (`kms` and `ec2` clients, two accounts).

docs/kms.md#grants, docs/kms.md#cross-account-use, docs/jobs.md#ebs-encryption-by-default. The
one test with a real guest (a micro boot under TCG) has its own server and is marked slow.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from api_live import ApiWorld, Creds, LiveKiln
from test_api_instances import (
    REGION,
    TYPE,
    _qemu_pids,
    _until,
    micro_server,
    wait_ready,
    wait_state,
)
from test_api_snapshots_support import wait_snapshot, wait_volume
from test_api_sts_kms import code, fresh

ZONE = "us-east-1a"


def _grant(kms: Any, key_id: str, grantee: Creds, *ops: str) -> str:
    made = kms.create_grant(
        KeyId=key_id,
        GranteePrincipal=f"arn:aws:iam::{grantee.account_id}:root",
        Operations=list(ops or ("Decrypt", "DescribeKey", "CreateGrant")),
    )
    assert made["GrantToken"]
    return str(made["GrantId"])


def test_grants_list_page_and_revoke(api: ApiWorld) -> None:
    owner, grantee = fresh(api), fresh(api)
    kms = api.kiln.client(owner, service="kms")
    key = kms.create_key(Description="shared disks")["KeyMetadata"]
    ids = [_grant(kms, key["KeyId"], grantee) for _ in range(3)]
    assert all(len(i) == 64 for i in ids)

    seen: list[dict[str, Any]] = []
    page = kms.list_grants(KeyId=key["Arn"], Limit=2)
    assert page["Truncated"] is True and len(page["Grants"]) == 2
    seen += page["Grants"]
    page = kms.list_grants(KeyId=key["KeyId"], Limit=2, Marker=page["NextMarker"])
    assert page["Truncated"] is False
    seen += page["Grants"]
    assert sorted(g["GrantId"] for g in seen) == sorted(ids)
    first = seen[0]
    assert first["KeyId"] == key["Arn"]
    assert first["GranteePrincipal"] == f"arn:aws:iam::{grantee.account_id}:root"
    assert first["IssuingAccount"] == f"arn:aws:iam::{owner.account_id}:root"
    assert set(first["Operations"]) == {"Decrypt", "DescribeKey", "CreateGrant"}
    assert [
        g["GrantId"] for g in kms.list_grants(KeyId=key["KeyId"], GrantId=ids[1])["Grants"]
    ] == [ids[1]]

    kms.revoke_grant(KeyId=key["KeyId"], GrantId=ids[0])
    left = {g["GrantId"] for g in kms.list_grants(KeyId=key["KeyId"])["Grants"]}
    assert left == set(ids[1:])
    assert code(lambda: kms.revoke_grant(KeyId=key["KeyId"], GrantId=ids[0])) == (
        "NotFoundException",
        400,
    )
    # the grantee retires a grant by its token only if the grant lets it; the owner may
    mine = kms.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=grantee.account_id,
        Operations=["Decrypt", "RetireGrant"],
    )
    theirs = api.kiln.client(grantee, service="kms")
    theirs.retire_grant(GrantToken=mine["GrantToken"])
    assert mine["GrantId"] not in {
        g["GrantId"] for g in kms.list_grants(KeyId=key["KeyId"])["Grants"]
    }


def test_grant_bad_input_is_kms_s_errors(api: ApiWorld) -> None:
    owner, grantee = fresh(api), fresh(api)
    kms = api.kiln.client(owner, service="kms")
    key = kms.create_key()["KeyMetadata"]
    to = f"arn:aws:iam::{grantee.account_id}:root"
    assert code(
        lambda: kms.create_grant(
            KeyId="1234abcd-12ab-34cd-56ef-1234567890ab",
            GranteePrincipal=to,
            Operations=["Decrypt"],
        )
    ) == ("NotFoundException", 400)
    assert code(
        lambda: kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=to, Operations=["Decrypts"])
    ) == ("ValidationException", 400)
    assert code(
        lambda: kms.create_grant(
            KeyId=key["KeyId"], GranteePrincipal="nobody", Operations=["Decrypt"]
        )
    ) == ("ValidationException", 400)
    assert code(
        lambda: kms.create_grant(KeyId="alias/aws/ebs", GranteePrincipal=to, Operations=["Decrypt"])
    ) == ("AccessDeniedException", 400)
    assert code(
        lambda: kms.create_grant(
            KeyId=key["KeyId"],
            GranteePrincipal=to,
            Operations=["Decrypt"],
            Constraints={"EncryptionContextSubset": {"a": "b"}},
        )
    ) == ("UnsupportedOperationException", 400)
    # the grantee cannot grant (or list grants) on the owner's key: KMS's NotFound
    theirs = api.kiln.client(grantee, service="kms")
    assert code(
        lambda: theirs.create_grant(
            KeyId=key["Arn"], GranteePrincipal=grantee.account_id, Operations=["Decrypt"]
        )
    ) == ("NotFoundException", 400)
    assert code(lambda: theirs.list_grants(KeyId=key["Arn"])) == ("NotFoundException", 400)
    assert code(lambda: kms.list_grants(KeyId=key["KeyId"], Marker="nope")) == (
        "InvalidMarkerException",
        400,
    )
    assert code(lambda: kms.revoke_grant(KeyId=key["KeyId"], GrantId="x")) == (
        "InvalidGrantIdException",
        400,
    )
    assert kms.list_grants(KeyId=key["KeyId"])["Grants"] == []  # nothing refused was made


def test_shared_encrypted_snapshot_needs_a_grant(api: ApiWorld) -> None:
    owner, grantee = fresh(api), fresh(api)
    ec2, kms = api.kiln.client(owner), api.kiln.client(owner, service="kms")
    theirs = api.kiln.client(grantee)
    key = kms.create_key(Description="shared")["KeyMetadata"]
    plain = api.kiln.snapshot(owner, api.disk)
    snap = ec2.copy_snapshot(
        SourceRegion=REGION, SourceSnapshotId=plain, Encrypted=True, KmsKeyId=key["KeyId"]
    )["SnapshotId"]
    assert wait_snapshot(ec2, snap)["State"] == "completed"
    ec2.modify_snapshot_attribute(
        SnapshotId=snap, CreateVolumePermission={"Add": [{"UserId": grantee.account_id}]}
    )

    # without a grant: the copy and the volume fail, as EC2's do
    failed = wait_snapshot(
        theirs, theirs.copy_snapshot(SourceRegion=REGION, SourceSnapshotId=snap)["SnapshotId"]
    )
    assert failed["State"] == "error"
    assert "Given key ID is not accessible" in failed["StateMessage"]
    vol = theirs.create_volume(AvailabilityZone=ZONE, SnapshotId=snap)["VolumeId"]
    assert wait_volume(theirs, vol)["State"] == "error"

    grant = _grant(kms, key["KeyId"], grantee)
    copied = wait_snapshot(
        theirs, theirs.copy_snapshot(SourceRegion=REGION, SourceSnapshotId=snap)["SnapshotId"]
    )
    their_default = api.kiln.client(grantee, service="kms").describe_key(KeyId="alias/aws/ebs")
    assert copied["State"] == "completed"
    assert copied["KmsKeyId"] == their_default["KeyMetadata"]["Arn"]  # re-encrypted
    vol = theirs.create_volume(AvailabilityZone=ZONE, SnapshotId=snap)["VolumeId"]
    made = wait_volume(theirs, vol)
    assert made["State"] == "available" and made["Encrypted"] is True

    kms.revoke_grant(KeyId=key["KeyId"], GrantId=grant)
    again = wait_snapshot(
        theirs, theirs.copy_snapshot(SourceRegion=REGION, SourceSnapshotId=snap)["SnapshotId"]
    )
    assert again["State"] == "error"
    # the copy made while the grant stood is the grantee's own
    wait_snapshot(theirs, copied["SnapshotId"])
    assert (
        theirs.describe_snapshots(SnapshotIds=[copied["SnapshotId"]])["Snapshots"][0]["State"]
        == "completed"
    )


def test_a_snapshot_under_the_aws_managed_key_cannot_be_shared(api: ApiWorld) -> None:
    owner, grantee = fresh(api), fresh(api)
    ec2 = api.kiln.client(owner)
    plain = api.kiln.snapshot(owner, api.disk)
    snap = ec2.copy_snapshot(SourceRegion=REGION, SourceSnapshotId=plain, Encrypted=True)[
        "SnapshotId"
    ]
    wait_snapshot(ec2, snap)
    assert code(
        lambda: ec2.modify_snapshot_attribute(
            SnapshotId=snap, CreateVolumePermission={"Add": [{"UserId": grantee.account_id}]}
        )
    ) == ("InvalidParameter", 400)
    perms = ec2.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    assert perms["CreateVolumePermissions"] == []
    # nor an image made of it: with accounts, or publicly
    image = ec2.register_image(
        Name=f"managed-{snap}",
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}],
    )["ImageId"]
    for perm in ({"UserId": grantee.account_id}, {"Group": "all"}):
        refused = code(
            lambda perm=perm: ec2.modify_image_attribute(
                ImageId=image, LaunchPermission={"Add": [perm]}
            )
        )
        assert refused in (("InvalidParameter", 400), ("InvalidParameterValue", 400))
    launch = ec2.describe_image_attribute(ImageId=image, Attribute="launchPermission")
    assert launch["LaunchPermissions"] == []


def test_ebs_encryption_by_default(api: ApiWorld) -> None:
    me = fresh(api)
    ec2, kms = api.kiln.client(me), api.kiln.client(me, service="kms")
    alias_arn = f"arn:aws:kms:{REGION}:{me.account_id}:alias/aws/ebs"
    assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == alias_arn
    plain = ec2.create_volume(AvailabilityZone=ZONE, Size=1)
    assert plain["Encrypted"] is False

    assert ec2.enable_ebs_encryption_by_default()["EbsEncryptionByDefault"] is True
    assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is True
    cli = api.kiln.aws(me, "get-ebs-encryption-by-default")  # the AWS CLI reads it the same
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["EbsEncryptionByDefault"] is True
    managed = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"]
    vol = ec2.create_volume(AvailabilityZone=ZONE, Size=1)
    assert (vol["Encrypted"], vol["KmsKeyId"]) == (True, managed)
    assert wait_volume(ec2, vol["VolumeId"])["State"] == "available"
    # from an unencrypted snapshot too, and a copy of one
    snap = api.kiln.snapshot(me, api.disk)
    assert ec2.create_volume(AvailabilityZone=ZONE, SnapshotId=snap)["KmsKeyId"] == managed
    copy = ec2.copy_snapshot(SourceRegion=REGION, SourceSnapshotId=snap)["SnapshotId"]
    assert wait_snapshot(ec2, copy)["KmsKeyId"] == managed

    key = kms.create_key(Description="default disks")["KeyMetadata"]
    assert ec2.modify_ebs_default_kms_key_id(KmsKeyId=key["KeyId"])["KmsKeyId"] == key["Arn"]
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == key["Arn"]
    assert ec2.create_volume(AvailabilityZone=ZONE, Size=1)["KmsKeyId"] == key["Arn"]
    assert code(lambda: ec2.modify_ebs_default_kms_key_id(KmsKeyId="alias/nope"))[0] == (
        "InvalidParameterValue"
    )
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == key["Arn"]  # refused: unchanged

    assert ec2.reset_ebs_default_kms_key_id()["KmsKeyId"] == alias_arn
    assert ec2.create_volume(AvailabilityZone=ZONE, Size=1)["KmsKeyId"] == managed
    assert ec2.disable_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False
    assert ec2.create_volume(AvailabilityZone=ZONE, Size=1)["Encrypted"] is False
    # per account: another account's volumes were never affected
    other = api.kiln.client(fresh(api))
    assert other.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False


@dataclass
class World:
    kiln: LiveKiln
    owner: Creds
    grantee: Creds
    micro: str

    def ec2(self, creds: Creds) -> Any:
        return self.kiln.client(creds, REGION)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with micro_server(tmp_path_factory.mktemp("kiln-kms-vms"), ("owner", "grantee"), REGION) as (
        kiln,
        accounts,
        micro,
    ):
        yield World(kiln, accounts[0], accounts[1], micro)


def _available(ec2: Any, image_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
        assert image["State"] != "failed", image.get("StateReason")
        return image if image["State"] == "available" else None

    return dict(_until(f"{image_id} available", probe))


def _launch(ec2: Any, image_id: str) -> str:
    r = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType=TYPE)
    return str(r["Instances"][0]["InstanceId"])


@pytest.mark.slow
def test_an_encrypted_image_shared_without_its_key_is_unusable_until_a_grant(
    world: World,
) -> None:
    owner, theirs = world.ec2(world.owner), world.ec2(world.grantee)
    kms = world.kiln.client(world.owner, REGION, service="kms")
    key = kms.create_key(Description="image key")["KeyMetadata"]
    image = owner.copy_image(
        SourceImageId=world.micro,
        SourceRegion=REGION,
        Name=f"micro-enc-{secrets.token_hex(3)}",
        Encrypted=True,
        KmsKeyId=key["KeyId"],
    )["ImageId"]
    assert _available(owner, image)["BlockDeviceMappings"][0]["Ebs"]["KmsKeyId"] == key["Arn"]
    owner.modify_image_attribute(
        ImageId=image, LaunchPermission={"Add": [{"UserId": world.grantee.account_id}]}
    )

    # without a grant: the launch ends as EC2 ends it (no VM starts), the copy fails
    iid = _launch(theirs, image)
    gone = wait_state(theirs, iid, "terminated")
    assert gone["StateReason"] == {
        "Code": "Client.InternalError",
        "Message": "Client.InternalError: Client error on launch",
    }
    assert not _qemu_pids(world.kiln.data_dir)
    failed = theirs.copy_image(
        SourceImageId=image, SourceRegion=REGION, Name=f"mine-{secrets.token_hex(3)}"
    )["ImageId"]
    reason = _until(
        f"{failed} failed",
        lambda: next(
            (
                i.get("StateReason")
                for i in theirs.describe_images(ImageIds=[failed])["Images"]
                if i["State"] == "failed"
            ),
            None,
        ),
    )
    assert reason["Code"] == "Client.Error"
    assert "Given key ID is not accessible" in reason["Message"]

    # with a grant: it boots, and copies under the grantee's own key
    grant = _grant(kms, key["KeyId"], world.grantee)
    iid = _launch(theirs, image)
    wait_state(theirs, iid, "running")
    wait_ready(theirs, iid)
    their_key = world.kiln.client(world.grantee, REGION, service="kms").create_key()["KeyMetadata"]
    mine = theirs.copy_image(
        SourceImageId=image,
        SourceRegion=REGION,
        Name=f"mine-{secrets.token_hex(3)}",
        Encrypted=True,
        KmsKeyId=their_key["KeyId"],
    )["ImageId"]
    copied = _available(theirs, mine)
    assert copied["BlockDeviceMappings"][0]["Ebs"]["KmsKeyId"] == their_key["Arn"]
    theirs.terminate_instances(InstanceIds=[iid])
    wait_state(theirs, iid, "terminated")

    # revoked: the next launch fails again
    kms.revoke_grant(KeyId=key["KeyId"], GrantId=grant)
    iid = _launch(theirs, image)
    assert wait_state(theirs, iid, "terminated")["StateReason"]["Code"] == "Client.InternalError"
