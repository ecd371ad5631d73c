"""ImportSnapshot / ImportImage -> RegisterImage -> CopyImage across regions -> ExportImage,
over HTTP with unmodified boto3 against a live `kiln serve` (SQLite and PostgreSQL)."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pytest
from api_live import ApiWorld
from botocore.exceptions import ClientError
from test_api_snapshots_support import (
    disk_server,
    pack_files,
    patterned_disk,
    same_bytes,
    to_raw,
    wait_export,
    wait_image,
    wait_import_image,
    wait_import_snapshot,
)

US, EU = "us-east-1", "eu-west-1"


def uniq(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def code(e: pytest.ExceptionInfo[ClientError]) -> str:
    return str(e.value.response["Error"]["Code"])


def import_snapshot(ec2, url: str, **kw) -> str:  # type: ignore[no-untyped-def]
    task = ec2.import_snapshot(DiskContainer={"Url": url, **kw.pop("container", {})}, **kw)
    assert task["SnapshotTaskDetail"]["Status"] == "active"
    done = wait_import_snapshot(ec2, task["ImportTaskId"])
    assert done["SnapshotTaskDetail"]["Status"] == "completed", done
    return str(done["SnapshotTaskDetail"]["SnapshotId"])


def register(ec2, snapshot_id: str, name: str) -> str:  # type: ignore[no-untyped-def]
    return str(
        ec2.register_image(
            Name=name,
            RootDeviceName="/dev/xvda",
            VirtualizationType="hvm",
            Architecture="x86_64",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot_id}}],
        )["ImageId"]
    )


def export(api: ApiWorld, ec2, image_id: str, fmt: str, bucket: str, prefix: str) -> Path:  # type: ignore[no-untyped-def]
    task = ec2.export_image(
        ImageId=image_id,
        DiskImageFormat=fmt,
        S3ExportLocation={"S3Bucket": bucket, "S3Prefix": prefix},
    )
    done = wait_export(ec2, task["ExportImageTaskId"])
    assert done["Status"] == "completed", done
    ext = {"RAW": "raw", "VMDK": "vmdk", "VHD": "vhd"}[fmt]
    path = api.kiln.data_dir / "buckets" / bucket / f"{prefix}{task['ExportImageTaskId']}.{ext}"
    assert path.is_file(), path
    return path


def test_import_register_copy_to_eu_export_bit_identical(api: ApiWorld, tmp_path: Path) -> None:
    disk = patterned_disk(tmp_path / "source.raw", seed=uniq("roundtrip"))
    us, eu = api.kiln.client(api.owner, US), api.kiln.client(api.owner, EU)
    snap = import_snapshot(
        us, f"file://{disk}", container={"Format": "RAW"}, Description="round trip"
    )
    described = us.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]
    assert described["State"] == "completed" and described["Progress"] == "100%"
    assert described["VolumeSize"] == 1 and described["OwnerId"] == api.owner.account_id
    image = register(us, snap, uniq("rt"))
    copy = eu.copy_image(
        SourceImageId=image, SourceRegion=US, Name=uniq("rt-copy"), Description="copied"
    )["ImageId"]
    assert copy != image
    copied = wait_image(eu, copy)
    assert copied["State"] == "available", copied
    assert copied["SourceImageId"] == image and copied["SourceImageRegion"] == US
    eu_snap = copied["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert eu_snap != snap
    assert eu.describe_snapshots(SnapshotIds=[eu_snap])["Snapshots"][0]["State"] == "completed"
    with pytest.raises(ClientError) as e:  # the copy lives in eu-west-1 only
        us.describe_images(ImageIds=[copy])
    assert code(e) == "InvalidAMIID.NotFound"

    raw = export(api, eu, copy, "RAW", "exports", "roundtrip/")
    assert same_bytes(raw, disk)
    # The "bucket" an export wrote to is where UserBucket imports read from.
    back = eu.import_snapshot(
        DiskContainer={"UserBucket": {"S3Bucket": "exports", "S3Key": f"roundtrip/{raw.name}"}}
    )
    detail = wait_import_snapshot(eu, back["ImportTaskId"])["SnapshotTaskDetail"]
    assert detail["Status"] == "completed" and detail["UserBucket"] == {
        "S3Bucket": "exports",
        "S3Key": f"roundtrip/{raw.name}",
    }
    vmdk = export(api, eu, copy, "VMDK", "exports", "")
    assert same_bytes(to_raw(vmdk, "vmdk", tmp_path / "from-vmdk.raw"), disk)
    vhd = export(api, eu, copy, "VHD", "exports", "vhd-")
    assert vhd.name.startswith("vhd-export-ami-")
    assert same_bytes(to_raw(vhd, "vpc", tmp_path / "from-vhd.raw"), disk)

    # A second copy of the same image to eu-west-1 sends no chunk: the store gains no pack.
    packs = pack_files(api.kiln.data_dir, EU)
    again = eu.copy_image(SourceImageId=image, SourceRegion=US, Name=uniq("rt-again"))["ImageId"]
    assert wait_image(eu, again)["State"] == "available"
    assert pack_files(api.kiln.data_dir, EU) == packs


def test_import_qcow2_made_by_qemu_img(api: ApiWorld, tmp_path: Path) -> None:
    disk = patterned_disk(tmp_path / "q.raw", size=6 * 1024 * 1024, seed=uniq("qcow2"))
    qcow = tmp_path / "q.qcow2"
    subprocess.run(
        ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(disk), str(qcow)], check=True
    )
    ec2 = api.kiln.client(api.owner)
    task = ec2.import_snapshot(DiskContainer={"Url": str(qcow)})  # format detected
    done = wait_import_snapshot(ec2, task["ImportTaskId"])
    detail = done["SnapshotTaskDetail"]
    assert detail["Status"] == "completed" and detail["Format"] == "QCOW2"
    assert detail["DiskImageSize"] == qcow.stat().st_size
    image = register(ec2, detail["SnapshotId"], uniq("qcow"))
    assert same_bytes(export(api, ec2, image, "RAW", "qcow-exports", "x/"), disk)


def test_import_image_registers_the_image(api: ApiWorld, tmp_path: Path) -> None:
    root = patterned_disk(tmp_path / "root.raw", seed=uniq("root"))
    data = patterned_disk(tmp_path / "data.raw", size=3 * 1024 * 1024, seed=uniq("data"))
    ec2 = api.kiln.client(api.owner)
    task = ec2.import_image(
        Description="imported",
        Architecture="arm64",
        BootMode="uefi",
        Platform="Linux",
        DiskContainers=[
            {"Url": f"file://{root}", "Format": "raw", "Description": "root"},
            {"Url": str(data), "Format": "RAW"},
        ],
        TagSpecifications=[
            {"ResourceType": "import-image-task", "Tags": [{"Key": "team", "Value": "ops"}]}
        ],
    )
    assert task["Status"] == "active" and task["ImportTaskId"].startswith("import-ami-")
    done = wait_import_image(ec2, task["ImportTaskId"])
    assert done["Status"] == "completed", done
    assert done["Tags"] == [{"Key": "team", "Value": "ops"}]
    assert [d["DeviceName"] for d in done["SnapshotDetails"]] == ["/dev/sda1", "/dev/sdb"]
    image = ec2.describe_images(ImageIds=[done["ImageId"]])["Images"][0]
    assert image["Name"] == task["ImportTaskId"] and image["State"] == "available"
    assert image["Architecture"] == "arm64" and image["BootMode"] == "uefi"
    assert image["RootDeviceName"] == "/dev/sda1" and image["RootDeviceType"] == "ebs"
    assert image["Description"] == "imported"
    snaps = [b["Ebs"]["SnapshotId"] for b in image["BlockDeviceMappings"]]
    assert snaps == [d["SnapshotId"] for d in done["SnapshotDetails"]]
    assert same_bytes(export(api, ec2, image["ImageId"], "RAW", "imported", ""), root)
    listed = ec2.describe_import_image_tasks(
        Filters=[{"Name": "task-state", "Values": ["completed"]}]
    )
    assert task["ImportTaskId"] in [t["ImportTaskId"] for t in listed["ImportImageTasks"]]


def test_import_from_http_url(api: ApiWorld, tmp_path: Path) -> None:
    disk = patterned_disk(tmp_path / "web.raw", seed=uniq("http"))
    ec2 = api.kiln.client(api.owner)
    with disk_server({"web.raw": disk}) as (base, _gate):
        snap = import_snapshot(ec2, f"{base}/web.raw", container={"Format": "raw"})
        task = ec2.import_snapshot(DiskContainer={"Url": f"{base}/missing.raw"})
        failed = wait_import_snapshot(ec2, task["ImportTaskId"])
    assert failed["SnapshotTaskDetail"]["Status"] == "deleted"
    assert failed["SnapshotTaskDetail"]["StatusMessage"].startswith("ClientError: ")
    assert "404" in failed["SnapshotTaskDetail"]["StatusMessage"]
    image = register(ec2, snap, uniq("web"))
    assert same_bytes(export(api, ec2, image, "RAW", "web", ""), disk)


def test_encrypted_import_and_reencrypting_copy(api: ApiWorld, tmp_path: Path) -> None:
    disk = patterned_disk(tmp_path / "secret.raw", seed=uniq("secret"))
    us, eu = api.kiln.client(api.owner, US), api.kiln.client(api.owner, EU)
    snap = import_snapshot(us, str(disk), Encrypted=True)
    s = us.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]
    assert s["Encrypted"] is True
    assert s["KmsKeyId"].startswith(f"arn:aws:kms:{US}:{api.owner.account_id}:key/")
    image = register(us, snap, uniq("enc"))
    copy = eu.copy_image(
        SourceImageId=image,
        SourceRegion=US,
        Name=uniq("enc-copy"),
        Encrypted=True,
        KmsKeyId="alias/aws/ebs",
    )["ImageId"]
    copied = wait_image(eu, copy)
    ebs = copied["BlockDeviceMappings"][0]["Ebs"]
    assert copied["State"] == "available" and ebs["Encrypted"] is True
    assert ebs["KmsKeyId"].startswith(f"arn:aws:kms:{EU}:{api.owner.account_id}:key/")
    assert same_bytes(export(api, eu, copy, "RAW", "secret", ""), disk)
    # A plain copy of a plain image can be encrypted on the way.
    plain = register(us, import_snapshot(us, str(disk)), uniq("plain"))
    enc = us.copy_image(SourceImageId=plain, SourceRegion=US, Name=uniq("now-enc"), Encrypted=True)[
        "ImageId"
    ]
    assert wait_image(us, enc)["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True


def test_copy_image_permissions(api: ApiWorld, tmp_path: Path) -> None:
    disk = patterned_disk(tmp_path / "perm.raw", seed=uniq("perm"))
    owner = api.kiln.client(api.owner)
    image = register(owner, import_snapshot(owner, str(disk)), uniq("perm"))
    grantee_eu = api.kiln.client(api.grantee, EU)
    stranger = api.kiln.client(api.stranger)
    for ec2 in (grantee_eu, stranger):
        with pytest.raises(ClientError) as e:
            ec2.copy_image(SourceImageId=image, SourceRegion=US, Name=uniq("nope"))
        assert code(e) == "InvalidAMIID.NotFound"
    owner.modify_image_attribute(
        ImageId=image, LaunchPermission={"Add": [{"UserId": api.grantee.account_id}]}
    )
    copy = grantee_eu.copy_image(
        SourceImageId=image, SourceRegion=US, Name=uniq("granted"), CopyImageTags=True
    )["ImageId"]
    copied = wait_image(grantee_eu, copy)
    assert copied["OwnerId"] == api.grantee.account_id and copied["State"] == "available"
    with pytest.raises(ClientError) as e:
        stranger.copy_image(SourceImageId=image, SourceRegion=US, Name=uniq("nope"))
    assert code(e) == "InvalidAMIID.NotFound"
    with pytest.raises(ClientError) as e:  # the grantee may copy but not export the original
        api.kiln.client(api.grantee).export_image(
            ImageId=image, DiskImageFormat="RAW", S3ExportLocation={"S3Bucket": "grantee"}
        )
    assert code(e) == "AuthFailure"


def test_import_and_export_bad_input(api: ApiWorld, tmp_path: Path) -> None:
    ec2 = api.kiln.client(api.owner)
    text = tmp_path / "notes.txt"
    text.write_text("not a disk image\n")
    cases = [
        ({"DiskContainer": {"Url": str(tmp_path / "missing.raw")}}, "InvalidParameterValue"),
        ({"DiskContainer": {"Url": "relative/disk.raw"}}, "InvalidParameterValue"),
        ({"DiskContainer": {"Url": "s3://bucket/disk.raw"}}, "InvalidParameterValue"),
        (
            {"DiskContainer": {"Url": str(api.kiln.data_dir / "catalog.key")}},
            "InvalidParameterValue",
        ),
        ({"DiskContainer": {"Url": str(text), "Format": "OVA"}}, "InvalidParameterValue"),
        (
            {"DiskContainer": {"Url": str(text)}, "KmsKeyId": "alias/aws/ebs"},
            "InvalidParameterCombination",
        ),
        (
            {"DiskContainer": {"Url": str(text)}, "Encrypted": True, "KmsKeyId": "alias/nope"},
            "InvalidParameterValue",
        ),
        ({"DiskContainer": {"Url": str(text)}, "DryRun": True}, "DryRunOperation"),
    ]
    for kwargs, expected in cases:
        with pytest.raises(ClientError) as e:
            ec2.import_snapshot(**kwargs)
        assert code(e) == expected, kwargs
    # Not a disk image: accepted, then the task fails with EC2's ClientError status.
    task = ec2.import_snapshot(DiskContainer={"Url": str(text)})
    failed = wait_import_snapshot(ec2, task["ImportTaskId"])["SnapshotTaskDetail"]
    assert failed["Status"] == "deleted" and failed["StatusMessage"].startswith("ClientError: ")
    assert "SnapshotId" not in failed
    with pytest.raises(ClientError) as e:
        ec2.describe_import_snapshot_tasks(ImportTaskIds=["import-snap-0123456789abcdef0"])
    assert code(e) == "InvalidConversionTaskId"
    with pytest.raises(ClientError) as e:
        ec2.describe_import_snapshot_tasks(ImportTaskIds=["bogus"])
    assert code(e) == "InvalidConversionTaskId.Malformed"
    with pytest.raises(ClientError) as e:
        ec2.export_image(
            ImageId="ami-0123456789abcdef0",
            DiskImageFormat="RAW",
            S3ExportLocation={"S3Bucket": "fine-bucket"},
        )
    assert code(e) == "InvalidAMIID.NotFound"
    with pytest.raises(ClientError) as e:
        ec2.export_image(
            ImageId="ami-0123456789abcdef0",
            DiskImageFormat="RAW",
            S3ExportLocation={"S3Bucket": "../escape"},
        )
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        ec2.copy_image(
            SourceImageId="ami-0123456789abcdef0", SourceRegion="mars-north-1", Name="x-copy"
        )
    assert code(e) == "InvalidParameterValue"
