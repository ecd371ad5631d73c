"""SSM Parameter Store, image aliases and resolve:ssm: end to end: a live `kiln serve` driven
with unmodified boto3 and the AWS CLI (docs/ssm.md, docs/aliases.md).

The server runs a stand-in QEMU that exits at once: launches are accepted, record the image
they resolved and end terminated. What these tests check is which image a launch took, not
that it boots (tests/api/test_api_instances.py boots real guests).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from api_live import Creds, LiveKiln, make_disk
from botocore.exceptions import ClientError

REGION = "us-east-1"
ALIAS = "ami-0123456789abcdef0"
DANGLING = "ami-0fedcba9876543210"
AWS_NAME = "/aws/service/debian/release/12/latest/amd64"


@dataclass
class SsmWorld:
    kiln: LiveKiln
    owner: Creds
    stranger: Creds
    snapshot: str  # the owner's imported snapshot in REGION

    def ssm(self, creds: Creds | None = None) -> Any:
        return self.kiln.client(creds or self.owner, service="ssm")

    def ec2(self, creds: Creds | None = None, region: str = REGION) -> Any:
        return self.kiln.client(creds or self.owner, region)

    def register(self, name: str, snapshot: str | None = None) -> str:
        return str(
            self.ec2().register_image(
                Name=name,
                RootDeviceName="/dev/xvda",
                VirtualizationType="hvm",
                BlockDeviceMappings=[
                    {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot or self.snapshot}}
                ],
            )["ImageId"]
        )

    def publish_base(self, name: str) -> str:
        """A public image of the kiln account in REGION, published as `kiln bake` does."""
        from kiln.app import build_services
        from kiln.config import Settings
        from kiln.services.images.base_images import publish_base_image

        services = build_services(Settings(data_dir=self.kiln.data_dir), compute=None)
        try:
            published = publish_base_image(services, self.kiln.data_dir / "disk.raw", name, "")
        finally:
            services.catalog.close()
        return next(p.image_id for p in published if p.region == REGION)

    def cli(self, *args: str) -> Any:
        res = self.kiln.kiln(*args, "--data-dir", str(self.kiln.data_dir))
        assert res.returncode == 0, res.stderr
        return res


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SsmWorld]:
    data_dir = tmp_path_factory.mktemp("kiln-ssm")
    fake = data_dir / "fake-qemu"
    fake.write_text("#!/bin/sh\necho 'stand-in QEMU: no guest here' >&2\nexit 1\n")
    fake.chmod(0o755)
    saved = os.environ.get("KILN_QEMU")
    os.environ["KILN_QEMU"] = str(fake)
    kiln = LiveKiln(data_dir, None, serve_args=("--network", "user", "--amazon-images"))
    try:
        kiln.start()
    finally:
        if saved is None:
            os.environ.pop("KILN_QEMU", None)
        else:
            os.environ["KILN_QEMU"] = saved
    try:
        owner = kiln.account("owner")
        stranger = kiln.account("stranger")
        snap = kiln.snapshot(owner, make_disk(data_dir / "disk.raw"))
        yield SsmWorld(kiln, owner, stranger, snap)
    finally:
        kiln.stop()


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def launch(world: SsmWorld, image_id: str) -> str:
    inst = world.ec2().run_instances(
        ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t2.micro"
    )["Instances"][0]
    described = world.ec2().describe_instances(InstanceIds=[inst["InstanceId"]])
    assert described["Reservations"][0]["Instances"][0]["ImageId"] == inst["ImageId"]
    return str(inst["ImageId"])


def test_parameters_put_get_versions_path_describe_delete(world: SsmWorld) -> None:
    ssm = world.ssm()
    assert ssm.put_parameter(Name="/app/db/host", Value="db1", Type="String")["Version"] == 1
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name="/app/db/host", Value="db2", Type="String")
    assert code(e) == "ParameterAlreadyExists"
    assert ssm.put_parameter(Name="/app/db/host", Value="db2", Overwrite=True)["Version"] == 2
    got = ssm.get_parameter(Name="/app/db/host")["Parameter"]
    assert (got["Value"], got["Version"], got["Type"], got["DataType"]) == (
        "db2",
        2,
        "String",
        "text",
    )
    assert got["ARN"] == f"arn:aws:ssm:{REGION}:{world.owner.account_id}:parameter/app/db/host"
    old = ssm.get_parameter(Name="/app/db/host:1")["Parameter"]
    assert (old["Value"], old["Selector"]) == ("db1", ":1")
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name="/app/db/host:7")
    assert code(e) == "ParameterVersionNotFound"
    history = ssm.get_parameter_history(Name="/app/db/host")["Parameters"]
    assert [(h["Version"], h["Value"]) for h in history] == [(1, "db1"), (2, "db2")]

    for n in range(12):
        ssm.put_parameter(Name=f"/app/list/p{n:02d}", Value=str(n), Type="StringList")
    ssm.put_parameter(Name="/app/list/deeper/x", Value="x", Type="String")
    pages = list(
        ssm.get_paginator("get_parameters_by_path").paginate(
            Path="/app/list", PaginationConfig={"PageSize": 5}
        )
    )
    names = [p["Name"] for page in pages for p in page["Parameters"]]
    assert names == [f"/app/list/p{n:02d}" for n in range(12)] and len(pages) == 3
    deep = ssm.get_parameters_by_path(Path="/app/list/", Recursive=True, MaxResults=10)
    assert len(deep["Parameters"]) == 10 and deep["NextToken"]
    described = [
        p["Name"]
        for page in ssm.get_paginator("describe_parameters").paginate(
            ParameterFilters=[{"Key": "Name", "Option": "BeginsWith", "Values": ["/app/list/p"]}],
            PaginationConfig={"PageSize": 4},
        )
        for p in page["Parameters"]
    ]
    assert described == names
    typed = ssm.describe_parameters(Filters=[{"Key": "Type", "Values": ["String"]}])["Parameters"]
    assert {p["Name"] for p in typed} == {"/app/db/host", "/app/list/deeper/x"}

    many = ssm.get_parameters(Names=["/app/db/host", "/app/list/p00", "/nope"])
    assert [p["Name"] for p in many["Parameters"]] == ["/app/db/host", "/app/list/p00"]
    assert many["InvalidParameters"] == ["/nope"]
    gone = ssm.delete_parameters(Names=["/app/list/p00", "/nope"])
    assert (gone["DeletedParameters"], gone["InvalidParameters"]) == (["/app/list/p00"], ["/nope"])
    ssm.delete_parameter(Name="/app/db/host")
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name="/app/db/host")
    assert code(e) == "ParameterNotFound"
    with pytest.raises(ClientError) as e:
        ssm.delete_parameter(Name="/app/db/host")
    assert code(e) == "ParameterNotFound"
    # another account sees none of it
    assert world.ssm(world.stranger).describe_parameters()["Parameters"] == []


def test_secure_string_round_trip(world: SsmWorld) -> None:
    ssm = world.ssm()
    ssm.put_parameter(Name="/app/secret", Value="s3cr3t-value", Type="SecureString")
    plain = ssm.get_parameter(Name="/app/secret", WithDecryption=True)["Parameter"]
    assert (plain["Value"], plain["Type"]) == ("s3cr3t-value", "SecureString")
    sealed = ssm.get_parameter(Name="/app/secret")["Parameter"]["Value"]
    assert sealed != "s3cr3t-value" and "s3cr3t" not in sealed
    meta = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": ["/app/secret"]}])[
        "Parameters"
    ]
    assert [(m["Type"], m["KeyId"]) for m in meta] == [("SecureString", "alias/aws/ssm")]
    catalog_bytes = (world.kiln.data_dir / "catalog.sqlite3").read_bytes()
    wal = world.kiln.data_dir / "catalog.sqlite3-wal"
    catalog_bytes += wal.read_bytes() if wal.exists() else b""
    assert b"s3cr3t-value" not in catalog_bytes


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("/aws/service/mine", "AccessDeniedException"),
        ("/kiln/service/x/latest", "AccessDeniedException"),
        ("ssm-thing", "ValidationException"),
        ("has space", "ValidationException"),
    ],
)
def test_reserved_and_bad_names_are_refused(world: SsmWorld, name: str, want: str) -> None:
    with pytest.raises(ClientError) as e:
        world.ssm().put_parameter(Name=name, Value="v", Type="String")
    assert code(e) == want


def test_other_errors_are_ssm_codes_never_500(world: SsmWorld) -> None:
    ssm = world.ssm()
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name="/typed/none", Value="v")
    assert code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(
            Name="/typed/ami",
            Value="ami-00000000000000000",
            Type="String",
            DataType="aws:ec2:image",
        )
    assert code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        ssm.get_parameters_by_path(Path="/x", NextToken="not-a-token")
    assert code(e) == "InvalidNextToken"
    with pytest.raises(ClientError) as e:
        ssm.get_parameters_by_path(Path="/x", ParameterFilters=[{"Key": "Name", "Values": ["a"]}])
    assert code(e) == "InvalidFilterKey"
    with pytest.raises(ClientError) as e:
        ssm.get_parameters_by_path(Path="/x", MaxResults=11)
    assert code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name="/bad name")
    assert code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name="/x:label")
    assert code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:  # an SSM action Kiln does not serve
        ssm.label_parameter_version(Name="/x", Labels=["prod"])
    assert code(e) == "UnknownOperationException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_the_aws_cli_drives_parameters(world: SsmWorld) -> None:
    def aws(*args: str) -> Any:
        res = world.kiln.aws(world.owner, *args, service="ssm")
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout) if res.stdout.strip() else None

    assert (
        aws("put-parameter", "--name", "/cli/a", "--value", "1", "--type", "String")["Version"] == 1
    )
    aws("put-parameter", "--name", "/cli/a", "--value", "2", "--overwrite")
    aws("put-parameter", "--name", "/cli/b/c", "--value", "pw", "--type", "SecureString")
    assert aws("get-parameter", "--name", "/cli/a")["Parameter"]["Value"] == "2"
    got = aws("get-parameter", "--name", "/cli/b/c", "--with-decryption")["Parameter"]
    assert got["Value"] == "pw"
    listed = aws("get-parameters-by-path", "--path", "/cli", "--recursive")["Parameters"]
    assert [p["Name"] for p in listed] == ["/cli/a", "/cli/b/c"]
    described = aws("describe-parameters", "--parameter-filters", "Key=Path,Values=/cli")
    assert [p["Name"] for p in described["Parameters"]] == ["/cli/a"]
    assert [h["Value"] for h in aws("get-parameter-history", "--name", "/cli/a")["Parameters"]] == [
        "1",
        "2",
    ]
    aws("delete-parameter", "--name", "/cli/a")
    res = world.kiln.aws(world.owner, "get-parameter", "--name", "/cli/a", service="ssm")
    assert res.returncode != 0 and "ParameterNotFound" in res.stderr


def test_resolve_ssm_family_latest_launches_the_newest_image(world: SsmWorld) -> None:
    family = f"fam-{secrets.token_hex(3)}"
    first = world.register(f"{family}/1")
    time.sleep(0.01)
    second = world.register(f"{family}/2")
    ssm = world.ssm()
    latest = ssm.get_parameter(Name=f"/kiln/service/{family}/latest")["Parameter"]
    assert (latest["Value"], latest["DataType"]) == (second, "aws:ec2:image")
    assert launch(world, f"resolve:ssm:/kiln/service/{family}/latest") == second
    # an account's own parameter, and a version of it
    ssm.put_parameter(Name="/images/web", Value=first, Type="String", DataType="aws:ec2:image")
    ssm.put_parameter(Name="/images/web", Value=second, Overwrite=True)
    assert launch(world, "resolve:ssm:/images/web") == second
    assert launch(world, "resolve:ssm:/images/web:1") == first
    with pytest.raises(ClientError) as e:
        launch(world, "resolve:ssm:/images/none")
    assert code(e) == "InvalidParameterValue" and "/images/none" in str(e.value)
    # the family is the owner's: another account has no such public parameter
    with pytest.raises(ClientError) as e:
        world.ssm(world.stranger).get_parameter(Name=f"/kiln/service/{family}/latest")
    assert code(e) == "ParameterNotFound"


def test_an_aliased_aws_id_describes_launches_and_copies(world: SsmWorld) -> None:
    image_id = world.register(f"aliased-{secrets.token_hex(3)}")
    world.ec2().modify_image_attribute(
        ImageId=image_id, LaunchPermission={"Add": [{"Group": "all"}]}
    )
    world.cli("alias", "set", ALIAS, image_id, "--region", REGION)
    for who in (world.owner, world.stranger):
        [img] = world.ec2(who).describe_images(ImageIds=[ALIAS])["Images"]
        assert (img["ImageId"], img["Name"]) == (
            ALIAS,
            next(i["Name"] for i in world.ec2().describe_images(ImageIds=[image_id])["Images"]),
        )
    assert launch(world, ALIAS) == image_id
    res = world.kiln.aws(world.owner, "describe-images", "--image-ids", ALIAS)
    assert res.returncode == 0, res.stderr
    assert [i["ImageId"] for i in json.loads(res.stdout)["Images"]] == [ALIAS]
    copy = world.ec2(region="eu-west-1").copy_image(
        SourceImageId=ALIAS, SourceRegion=REGION, Name="copied-from-alias"
    )["ImageId"]
    [copied] = world.ec2(region="eu-west-1").describe_images(ImageIds=[copy])["Images"]
    assert copied["SourceImageId"] == image_id


def test_a_dangling_alias_fails_naming_the_alias(world: SsmWorld) -> None:
    world.cli("alias", "set", DANGLING, "ghost-family", "--region", REGION)
    with pytest.raises(ClientError) as e:
        world.ec2().describe_images(ImageIds=[DANGLING])
    # the message names the alias and what it points at (an unknown id alone names no family)
    assert code(e) == "InvalidAMIID.NotFound"
    assert DANGLING in str(e.value) and "ghost-family" in str(e.value)
    with pytest.raises(ClientError) as e:
        launch(world, DANGLING)
    assert code(e) == "InvalidAMIID.NotFound"
    assert DANGLING in str(e.value) and "ghost-family" in str(e.value)
    res = world.kiln.aws(world.owner, "run-instances", "--image-id", DANGLING, "--count", "1")
    assert res.returncode != 0 and "InvalidAMIID.NotFound" in res.stderr
    assert DANGLING in res.stderr and "ghost-family" in res.stderr


def test_base_images_are_amazon_and_public_parameters_name_them(world: SsmWorld) -> None:
    base = world.publish_base(f"kiln/debian/12.{secrets.token_hex(2)}")
    owned = world.ec2(world.stranger).describe_images(Owners=["amazon"])["Images"]
    assert [i["ImageId"] for i in owned] == [base]
    ssm = world.ssm(world.stranger)
    assert ssm.get_parameter(Name="/kiln/service/kiln/debian/latest")["Parameter"]["Value"] == base
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name=AWS_NAME)
    assert code(e) == "ParameterNotFound"
    world.cli("parameter", "map", AWS_NAME, "kiln/debian")
    assert ssm.get_parameter(Name=AWS_NAME)["Parameter"]["Value"] == base
    listed = ssm.get_parameters_by_path(Path="/aws/service/debian", Recursive=True)["Parameters"]
    assert [(p["Name"], p["Value"]) for p in listed] == [(AWS_NAME, base)]
    assert launch(world, f"resolve:ssm:{AWS_NAME}") == base
