"""Image signing end to end (docs/signing.md): ``kiln image keygen|sign|verify`` and
``kiln trust`` on the data dir of a live ``kiln serve``, and RunInstances / CopyImage through
unmodified boto3 under a region's signing policy. The tampering is real: a manifest file of the
region's store, a signed field of the catalog row, the signature record.

One server for the module (SQLite). The policy is per region; each test uses regions no other
test's policy touches.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from api_live import Creds, LiveKiln, make_disk
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiln.runtime.layout import catalog_file, store_dir


@dataclass
class SignWorld:
    kiln: LiveKiln
    owner: Creds
    other: Creds
    keys: Path

    def ec2(self, creds: Creds, region: str) -> Any:
        return self.kiln.client(creds, region)

    def image(self, creds: Creds, region: str, name: str) -> tuple[str, str]:
        """A new image over a snapshot of its own; ``(image id, snapshot id)``."""
        disk = make_disk(self.kiln.data_dir / f"{name}.raw", seed=secrets.token_bytes(8))
        snap = self.kiln.snapshot(creds, disk, region)
        image_id = self.ec2(creds, region).register_image(
            Name=name,
            RootDeviceName="/dev/xvda",
            VirtualizationType="hvm",
            Architecture="x86_64",
            BootMode="legacy-bios",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}],
        )["ImageId"]
        return str(image_id), snap

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.kiln.kiln(*args, "--data-dir", str(self.kiln.data_dir))

    def keygen(self, name: str) -> Path:
        path = self.keys / name
        res = self.kiln.kiln("image", "keygen", str(path))
        assert res.returncode == 0, res.stderr
        return path

    def sign(self, image_id: str, key: Path, region: str, *extra: str) -> dict[str, Any]:
        res = self.cli("image", "sign", image_id, "--key", str(key), "--region", region, "--json")
        assert res.returncode == 0, res.stderr
        return dict(json.loads(res.stdout))

    def verify(self, image_id: str, region: str, *extra: str) -> tuple[int, dict[str, Any]]:
        res = self.cli("image", "verify", image_id, "--region", region, "--json", *extra)
        assert res.returncode in (0, 1), res.stderr
        return res.returncode, dict(json.loads(res.stdout))

    def trust(self, *args: str) -> None:
        res = self.cli("trust", *args)
        assert res.returncode == 0, res.stderr


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignWorld]:
    kiln = LiveKiln(tmp_path_factory.mktemp("kiln-signing"), None)
    kiln.start()
    keys = kiln.data_dir / "keys"
    keys.mkdir()
    try:
        yield SignWorld(kiln, kiln.account("owner"), kiln.account("other"), keys)
    finally:
        kiln.stop()


def _error(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(ClientError) as e:
        call()
    return dict(e.value.response["Error"])


def _launch(ec2: Any, image_id: str) -> Any:
    return ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t2.micro")


def _instances_of(ec2: Any, image_id: str) -> list[str]:
    found = ec2.describe_instances(Filters=[{"Name": "image-id", "Values": [image_id]}])
    return [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]]


def test_signed_image_launches_under_the_policy_and_a_tampered_manifest_is_refused(
    world: SignWorld,
) -> None:
    region = "us-east-1"
    ec2 = world.ec2(world.owner, region)
    signed, snap = world.image(world.owner, region, "signed")
    unsigned, _ = world.image(world.owner, region, "unsigned")
    key = world.keygen("owner-key")

    got = world.sign(signed, key, region)
    assert got["ImageId"] == signed and got["KeyId"].startswith("ed25519:")
    assert got["SignedBy"] == world.owner.account_id
    # valid against the public key handed in; not yet against the region (it trusts no key)
    code, ok = world.verify(signed, region, "--trusted-keys", f"{key}.pub")
    assert code == 0 and ok["Valid"] is True and ok["KeyId"] == got["KeyId"]
    code, untrusted = world.verify(signed, region)
    assert code == 1 and "which is not trusted in us-east-1" in untrusted["Reason"]
    res = world.cli("image", "verify", unsigned, "--region", region)
    assert res.returncode == 1
    assert res.stderr.strip() == f"invalid: {unsigned} is not signed"

    # the policy: an untampered signed image launches, an unsigned one is refused
    world.trust("add", f"{key}.pub", "--region", region, "--comment", "owner's key")
    world.trust("require", "on", "--region", region)
    listed = json.loads(world.cli("trust", "ls", "--region", region, "--json").stdout)
    assert [k["KeyId"] for k in listed["Keys"]] == [got["KeyId"]]
    assert listed["SignatureRequired"] == {region: True}
    assert world.verify(signed, region)[0] == 0
    run = _launch(ec2, signed)
    iid = run["Instances"][0]["InstanceId"]
    assert run["Instances"][0]["ImageId"] == signed
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid])
    err = _error(lambda: _launch(ec2, unsigned))
    assert err["Code"] == "UnauthorizedOperation"
    assert err["Message"] == (
        "You are not authorized to launch instances with this image: us-east-1 requires images "
        f"signed by a trusted key, and {unsigned} is not signed."
    )
    assert _instances_of(ec2, unsigned) == []

    # one byte of the snapshot's manifest in the store changes: verification fails, launch too
    manifest = store_dir(world.kiln.data_dir, region) / "manifests" / snap
    blob = bytearray(manifest.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    manifest.write_bytes(bytes(blob))
    code, bad = world.verify(signed, region)
    assert code == 1 and bad["Valid"] is False
    assert bad["Reason"] == f"{signed} changed since it was signed: the manifest of {snap} differs"
    res = world.cli("image", "verify", signed, "--region", region)
    assert res.returncode == 1 and f"the manifest of {snap} differs" in res.stderr
    err = _error(lambda: _launch(ec2, signed))
    assert err["Code"] == "UnauthorizedOperation"
    assert f"{signed} changed since it was signed: the manifest of {snap} differs" in err["Message"]
    assert _instances_of(ec2, signed) == [iid]  # only the first, terminated one

    # the operator turns the policy off: the launch is accepted again (the boot itself is not
    # this test's business), while verification still says what changed
    world.trust("require", "off", "--region", region)
    run = _launch(ec2, unsigned)
    ec2.terminate_instances(InstanceIds=[run["Instances"][0]["InstanceId"]])
    assert world.verify(signed, region)[0] == 1


def test_changed_signed_fields_and_an_altered_signature_fail_verification(
    world: SignWorld,
) -> None:
    region = "ap-south-1"
    key = world.keygen("fields-key")
    first, snap = world.image(world.owner, region, "fields-1")
    second, _ = world.image(world.owner, region, "fields-2")
    world.sign(first, key, region)
    world.sign(second, key, region)
    world.trust("add", f"{key}.pub", "--region", region)
    assert world.verify(first, region)[0] == 0 and world.verify(second, region)[0] == 0

    # the contract (docs/signing.md#the-signed-document), checked without Kiln's code
    with sqlite3.connect(catalog_file(world.kiln.data_dir)) as db:
        doc, digest, signature, public = db.execute(
            "SELECT document, digest, signature, public_key FROM image_signatures "
            "WHERE image_id = ?",
            (first,),
        ).fetchone()
    signed = json.loads(doc)
    assert doc == json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert hashlib.sha256(doc.encode()).hexdigest() == digest
    Ed25519PublicKey.from_public_bytes(public).verify(signature, bytes.fromhex(digest))
    assert signed["Format"] == "kiln-image-signature/1"
    assert signed["Image"]["ImageId"] == first and signed["Image"]["BootMode"] == "legacy-bios"
    assert signed["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == snap
    manifest = (store_dir(world.kiln.data_dir, region) / "manifests" / snap).read_bytes()
    assert signed["Snapshots"] == [
        {
            "SnapshotId": snap,
            "ManifestSha256": hashlib.sha256(manifest).hexdigest(),
            "ManifestSize": len(manifest),
        }
    ]

    with sqlite3.connect(catalog_file(world.kiln.data_dir)) as db:
        db.execute("UPDATE images SET architecture = 'arm64' WHERE image_id = ?", (first,))
        # a forged document (a bigger root volume) kept with the old signature
        (doc,) = db.execute(
            "SELECT document FROM image_signatures WHERE image_id = ?", (second,)
        ).fetchone()
        forged = json.loads(doc)
        forged["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] = 999
        db.execute(
            "UPDATE image_signatures SET document = ? WHERE image_id = ?",
            (json.dumps(forged, sort_keys=True, separators=(",", ":")), second),
        )
    code, got = world.verify(first, region)
    assert (
        code == 1
        and got["Reason"] == f"{first} changed since it was signed: its Architecture differs"
    )
    code, got = world.verify(second, region)
    assert code == 1
    assert got["Reason"] == (
        f"{second}: its signature does not match its signed document (the signature record "
        "was altered)"
    )
    # signing again (the owner accepts the change) makes it valid again
    world.sign(first, key, region)
    assert world.verify(first, region)[0] == 0


def test_copy_image_into_a_region_that_requires_signatures(world: SignWorld) -> None:
    source, dest = "us-west-2", "eu-west-1"
    key = world.keygen("copy-key")
    image_id, _ = world.image(world.owner, source, "to-copy")
    world.trust("add", f"{key}.pub", "--region", dest)
    world.trust("require", "on", "--region", dest)
    ec2 = world.ec2(world.owner, dest)

    def copy(name: str) -> Any:
        return ec2.copy_image(Name=name, SourceImageId=image_id, SourceRegion=source)

    err = _error(lambda: copy("refused-copy"))
    assert err["Code"] == "UnauthorizedOperation"
    assert err["Message"] == (
        "You are not authorized to copy this image: eu-west-1 requires images signed by a "
        f"trusted key, and {image_id} is not signed."
    )
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    # a signature by a key the destination does not trust is not enough
    stranger = world.keygen("untrusted-key")
    world.sign(image_id, stranger, source)
    err = _error(lambda: copy("refused-copy"))
    assert "which is not trusted in eu-west-1" in err["Message"]
    # signed by the trusted key: accepted (the copy is a new image, unsigned until signed)
    world.sign(image_id, key, source)
    new_id = copy("accepted-copy")["ImageId"]
    assert [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]] == [new_id]


def test_bad_input_is_one_line_and_changes_nothing(world: SignWorld) -> None:
    region = "ca-central-1"
    image_id, _ = world.image(world.owner, region, "bad-input")
    others, _ = world.image(world.other, region, "others")
    key = world.keygen("bad-input-key")
    rsa = world.keys / "rsa.pem"
    subprocess.run(
        [
            "openssl",
            "genpkey",
            "-algorithm",
            "rsa",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            str(rsa),
        ],
        check=True,
        capture_output=True,
    )
    cases = [
        (
            ("image", "sign", image_id, "--key", str(rsa), "--region", region),
            f"error: InvalidParameterValue: {rsa} is not an ed25519 private key (PEM PKCS#8 or "
            "OpenSSH); it is a RSA key",
        ),
        (
            ("image", "sign", image_id, "--key", f"{key}.pub", "--region", region),
            f"error: InvalidParameterValue: {key}.pub is not an ed25519 private key (PEM PKCS#8 "
            "or OpenSSH)",
        ),
        (
            ("image", "sign", "ami-0123456789abcdef0", "--key", str(key), "--region", region),
            "error: InvalidAMIID.NotFound: The image id '[ami-0123456789abcdef0]' does not exist",
        ),
        (
            ("image", "sign", image_id, "--key", str(key), "--region", "us-east-2"),
            f"error: InvalidAMIID.NotFound: The image id '[{image_id}]' does not exist",
        ),
        (("image", "sign", "snap-1", "--key", str(key), "--region", region), None),
        (("trust", "add", str(key), "--region", region), None),
        (("trust", "require", "on", "--region", region), None),
        (("trust", "rm", "ed25519:00", "--region", region), None),
    ]
    for args, line in cases:
        res = world.cli(*args)
        assert res.returncode == 1, (args, res.stdout)
        assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith("error: ")
        if line is not None:
            assert res.stderr.strip() == line, args
    res = world.cli(
        "image",
        "sign",
        others,
        "--key",
        str(key),
        "--region",
        region,
        "--account",
        world.owner.account_id,
    )
    # another account's private image is not found, as EC2 answers its owner's API calls
    assert res.returncode == 1, res.stderr
    assert res.stderr.strip() == (
        f"error: InvalidAMIID.NotFound: The image id '[{others}]' does not exist"
    )
    for image in (image_id, others):
        code, got = world.verify(image, region)
        assert code == 1 and got["Reason"] == f"{image} is not signed"
    listed = json.loads(world.cli("trust", "ls", "--region", region, "--json").stdout)
    assert listed == {"Keys": [], "SignatureRequired": {region: False}}
