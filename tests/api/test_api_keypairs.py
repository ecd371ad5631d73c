"""Key pairs over HTTP with unmodified boto3 against a live `kiln serve` (SQLite, PostgreSQL)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization

if TYPE_CHECKING:
    from api_live import ApiWorld


def uniq(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _openssh_public(private_pem: str) -> str:
    key = (
        serialization.load_ssh_private_key(private_pem.encode(), None)
        if "OPENSSH" in private_pem
        else serialization.load_pem_private_key(private_pem.encode(), None)
    )
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


def test_create_key_pair_ed25519_and_rsa_return_usable_private_keys(api: ApiWorld) -> None:
    ec2 = api.kiln.client(api.owner)
    ed_name, rsa_name = uniq("ed"), uniq("rsa")
    ed = ec2.create_key_pair(
        KeyName=ed_name,
        KeyType="ed25519",
        TagSpecifications=[{"ResourceType": "key-pair", "Tags": [{"Key": "team", "Value": "web"}]}],
    )
    assert ed["KeyMaterial"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert ed["KeyPairId"].startswith("key-") and ed["Tags"] == [{"Key": "team", "Value": "web"}]
    ed_public = _openssh_public(ed["KeyMaterial"])
    blob = base64.b64decode(ed_public.split()[1])
    assert ed["KeyFingerprint"] == base64.b64encode(hashlib.sha256(blob).digest()).decode()

    rsa = ec2.create_key_pair(KeyName=rsa_name)  # EC2's default type: rsa
    assert rsa["KeyMaterial"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    pkcs8 = serialization.load_pem_private_key(rsa["KeyMaterial"].encode(), None).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert rsa["KeyFingerprint"] == ":".join(f"{b:02x}" for b in hashlib.sha1(pkcs8).digest())

    found = ec2.describe_key_pairs(KeyNames=[ed_name, rsa_name], IncludePublicKey=True)["KeyPairs"]
    by_name = {k["KeyName"]: k for k in found}
    assert set(by_name) == {ed_name, rsa_name}
    assert by_name[ed_name]["KeyType"] == "ed25519" and by_name[rsa_name]["KeyType"] == "rsa"
    assert by_name[ed_name]["PublicKey"].split()[:2] == ed_public.split()[:2]
    assert (
        by_name[rsa_name]["PublicKey"].split()[:2]
        == _openssh_public(rsa["KeyMaterial"]).split()[:2]
    )
    tagged = ec2.describe_key_pairs(
        Filters=[{"Name": "tag:team", "Values": ["w*"]}, {"Name": "key-name", "Values": [ed_name]}]
    )
    assert [k["KeyPairId"] for k in tagged["KeyPairs"]] == [ed["KeyPairId"]]
    by_id = ec2.describe_key_pairs(KeyPairIds=[rsa["KeyPairId"]])["KeyPairs"]
    assert [k["KeyName"] for k in by_id] == [rsa_name] and "PublicKey" not in by_id[0]
    assert rsa["KeyPairId"] in [
        k["KeyPairId"]
        for k in ec2.describe_key_pairs(Filters=[{"Name": "key-type", "Values": ["rsa"]}])[
            "KeyPairs"
        ]
    ]


def test_import_key_pair_openssh_keys_and_ec2_fingerprints(api: ApiWorld, tmp_path: Path) -> None:
    ec2 = api.kiln.client(api.owner)
    for kind in ("rsa", "ed25519"):
        path = tmp_path / f"id_{kind}"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "me@host", "-f", str(path)], check=True
        )
        public = path.with_suffix(".pub").read_bytes()
        name = uniq(f"imp-{kind}")
        got = ec2.import_key_pair(KeyName=name, PublicKeyMaterial=public)
        key = serialization.load_ssh_public_key(b" ".join(public.split()[:2]))
        if kind == "rsa":  # EC2: MD5 of the DER public key
            der = key.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            want = ":".join(f"{b:02x}" for b in hashlib.md5(der).digest())
        else:
            want = base64.b64encode(
                hashlib.sha256(base64.b64decode(public.split()[1])).digest()
            ).decode()
        assert got["KeyFingerprint"] == want and got["KeyName"] == name
        listed = ec2.describe_key_pairs(KeyNames=[name], IncludePublicKey=True)["KeyPairs"][0]
        assert listed["KeyType"] == kind
        assert listed["PublicKey"].split()[1] == public.split()[1].decode()


def test_key_pair_errors_and_deletion(api: ApiWorld) -> None:
    ec2 = api.kiln.client(api.owner)
    name = uniq("dup")
    made = ec2.create_key_pair(KeyName=name, KeyType="ed25519")
    with pytest.raises(ClientError) as e:
        ec2.create_key_pair(KeyName=name)
    assert code(e) == "InvalidKeyPair.Duplicate"
    with pytest.raises(ClientError) as e:
        ec2.import_key_pair(KeyName=name, PublicKeyMaterial=b"ssh-ed25519 AAAA")
    assert code(e) in ("InvalidKeyPair.Duplicate", "InvalidKey.Format")
    for garbage in (b"not a key", b"ssh-rsa AAAAB3NzaC1yc2E= short", b"\xff\xfe"):
        with pytest.raises(ClientError) as e:
            ec2.import_key_pair(KeyName=uniq("bad"), PublicKeyMaterial=garbage)
        assert code(e) == "InvalidKey.Format"
    with pytest.raises(ClientError) as e:
        ec2.describe_key_pairs(KeyNames=[uniq("missing")])
    assert code(e) == "InvalidKeyPair.NotFound"
    with pytest.raises(ClientError) as e:
        ec2.describe_key_pairs(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    assert code(e) == "InvalidFilter"
    with pytest.raises(ClientError) as e:
        ec2.create_key_pair(KeyName="x" * 256)
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        ec2.create_key_pair(KeyName=uniq("ppk"), KeyFormat="ppk")
    assert code(e) == "InvalidParameterValue"

    # Another account sees none of it and can delete none of it.
    stranger = api.kiln.client(api.stranger)
    assert name not in [k["KeyName"] for k in stranger.describe_key_pairs()["KeyPairs"]]
    with pytest.raises(ClientError) as e:
        stranger.delete_key_pair(KeyPairId=made["KeyPairId"])
    assert code(e) == "InvalidKeyPair.NotFound"

    # Deleting by name; an unknown name is not an error (as on EC2), an unknown id is.
    assert ec2.delete_key_pair(KeyName=name)["KeyPairId"] == made["KeyPairId"]
    assert ec2.delete_key_pair(KeyName=name)["Return"] is True
    with pytest.raises(ClientError) as e:
        ec2.delete_key_pair(KeyPairId=made["KeyPairId"])
    assert code(e) == "InvalidKeyPair.NotFound"
    with pytest.raises(ClientError) as e:
        ec2.describe_key_pairs(KeyNames=[name])
    assert code(e) == "InvalidKeyPair.NotFound"
    # The name is free again.
    assert ec2.create_key_pair(KeyName=name, KeyType="ed25519")["KeyName"] == name
