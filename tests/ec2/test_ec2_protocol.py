"""The Query protocol against botocore itself: its serializer writes, we parse; we render, its
parser reads. Random values for every EC2 operation, plus the shapes Kiln's actions rely on."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.awsrequest import AWSRequest
from botocore.parsers import EC2QueryParser
from botocore.serialize import create_serializer
from shape_values import random_value

from kiln.ec2.protocol import decode_form, parse_query, render_error, render_result
from kiln.ec2.shapes import service_model
from kiln.errors import KilnError


def wire_form(action: str, params: dict[str, Any]) -> dict[str, list[str]]:
    """What boto3 would send for ``params``, decoded the way the server decodes a body."""
    operation = service_model().operation_model(action)
    serialized = create_serializer("ec2", include_validation=False).serialize_to_request(
        params, operation
    )
    request = AWSRequest(
        method="POST", url="http://kiln/", data=serialized["body"], headers=serialized["headers"]
    )
    body = request.prepare().body
    assert isinstance(body, str | bytes)
    return decode_form(body)


def parse_xml(action: str, body: bytes) -> dict[str, Any]:
    shape = service_model().operation_model(action).output_shape
    parsed = EC2QueryParser().parse({"body": body, "headers": {}, "status_code": 200}, shape)
    assert isinstance(parsed, dict)
    return parsed


# --- parse_query: round trips through botocore's EC2 serializer ---------------------------
@pytest.mark.parametrize("seed", range(3))
def test_parse_query_inverts_botocore_serializer_for_every_operation(seed: int) -> None:
    rng = random.Random(seed)
    checked = 0
    for action in sorted(service_model().operation_names):
        shape = service_model().operation_model(action).input_shape
        if shape is None:
            continue
        params = random_value(shape, rng)
        assert parse_query(action, wire_form(action, params)) == params, action
        checked += 1
    assert checked > 700


def test_parse_describe_images_filters_owners_and_flags() -> None:
    form = wire_form(
        "DescribeImages",
        {
            "ImageIds": ["ami-1", "ami-2"],
            "Owners": ["self", "kiln"],
            "ExecutableUsers": ["all"],
            "Filters": [
                {"Name": "name", "Values": ["web-*", "db-?"]},
                {"Name": "tag:env", "Values": ["prod"]},
            ],
            "IncludeDeprecated": True,
            "MaxResults": 5,
            "DryRun": False,
        },
    )
    assert form["Filter.1.Value.2"] == ["db-?"] and form["Owner.2"] == ["kiln"]
    assert form["ExecutableBy.1"] == ["all"] and form["IncludeDeprecated"] == ["true"]
    assert parse_query("DescribeImages", form) == {
        "ImageIds": ["ami-1", "ami-2"],
        "Owners": ["self", "kiln"],
        "ExecutableUsers": ["all"],
        "Filters": [
            {"Name": "name", "Values": ["web-*", "db-?"]},
            {"Name": "tag:env", "Values": ["prod"]},
        ],
        "IncludeDeprecated": True,
        "MaxResults": 5,
        "DryRun": False,
    }


def test_parse_register_image_block_devices_and_tag_specifications() -> None:
    form = {
        "Name": ["web"],
        "RootDeviceName": ["/dev/xvda"],
        "BlockDeviceMapping.1.DeviceName": ["/dev/xvda"],
        "BlockDeviceMapping.1.Ebs.SnapshotId": ["snap-1"],
        "BlockDeviceMapping.1.Ebs.VolumeSize": ["8"],
        "BlockDeviceMapping.1.Ebs.DeleteOnTermination": ["true"],
        "BlockDeviceMapping.2.DeviceName": ["/dev/sdb"],
        "BlockDeviceMapping.2.VirtualName": ["ephemeral0"],
        "TagSpecification.1.ResourceType": ["image"],
        "TagSpecification.1.Tag.1.Key": ["env"],
        "TagSpecification.1.Tag.1.Value": [""],
    }
    assert parse_query("RegisterImage", form) == {
        "Name": "web",
        "RootDeviceName": "/dev/xvda",
        "BlockDeviceMappings": [
            {
                "DeviceName": "/dev/xvda",
                "Ebs": {"SnapshotId": "snap-1", "VolumeSize": 8, "DeleteOnTermination": True},
            },
            {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
        ],
        "TagSpecifications": [{"ResourceType": "image", "Tags": [{"Key": "env", "Value": ""}]}],
    }


def test_parse_launch_permission_add_and_remove() -> None:
    form = {
        "ImageId": ["ami-1"],
        "LaunchPermission.Add.1.UserId": ["111122223333"],
        "LaunchPermission.Remove.1.Group": ["all"],
    }
    assert parse_query("ModifyImageAttribute", form) == {
        "ImageId": "ami-1",
        "LaunchPermission": {"Add": [{"UserId": "111122223333"}], "Remove": [{"Group": "all"}]},
    }


def test_parse_list_order_follows_numeric_index_not_text() -> None:
    form = {f"ImageId.{i}": [f"ami-{i}"] for i in (10, 2, 1)}
    assert parse_query("DescribeImages", form)["ImageIds"] == ["ami-1", "ami-2", "ami-10"]


def test_parse_blob_timestamp_and_plain_string_user_data() -> None:
    key = parse_query(
        "ImportKeyPair", {"KeyName": ["k"], "PublicKeyMaterial": ["c3NoLXJzYSBBQUFB"]}
    )
    assert key["PublicKeyMaterial"] == b"ssh-rsa AAAA"
    run = parse_query(
        "RunInstances", {"MinCount": ["1"], "MaxCount": ["1"], "UserData": ["IyEvYmluL3No"]}
    )
    assert run["UserData"] == "IyEvYmluL3No"  # EC2 types UserData as a (base64) string
    dep = parse_query(
        "EnableImageDeprecation",
        {"ImageId": ["ami-1"], "DeprecateAt": ["2026-11-23T11:00:00+01:00"]},
    )
    assert dep["DeprecateAt"] == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("form", "code", "fragment"),
    [
        ({"MaxResults": ["abc"]}, "InvalidParameterValue", "Value (abc) for parameter MaxResults"),
        ({"IncludeDeprecated": ["maybe"]}, "InvalidParameterValue", "Expected true or false"),
        ({"ImageId": ["ami-1"]}, "InvalidParameterValue", "send it as ImageId.1"),
        (
            {"Filter.1.Name": ["name"], "Filter.1.Colour": ["red"]},
            "UnknownParameter",
            "The parameter Filter.1.Colour is not recognized",
        ),
        ({"Foo": ["1"]}, "UnknownParameter", "The parameter Foo is not recognized"),
        ({"ImageId.x": ["ami-1"]}, "UnknownParameter", "ImageId.x"),
        ({"Owner.1": ["self\x00"]}, "InvalidParameterValue", "characters that are not allowed"),
    ],
)
def test_parse_describe_images_rejects_bad_input(
    form: dict[str, list[str]], code: str, fragment: str
) -> None:
    with pytest.raises(KilnError) as caught:
        parse_query("DescribeImages", form)
    assert caught.value.code.code == code
    assert fragment in caught.value.message


def test_parse_rejects_enum_value_missing_required_and_bad_base64() -> None:
    with pytest.raises(KilnError) as bad_enum:
        parse_query("RegisterImage", {"Name": ["x"], "Architecture": ["sparc"]})
    assert bad_enum.value.code.code == "InvalidParameterValue"
    assert "Valid values: i386, x86_64" in bad_enum.value.message
    with pytest.raises(KilnError) as missing:
        parse_query("RegisterImage", {"Architecture": ["x86_64"]})
    assert missing.value.code.code == "MissingParameter"
    assert missing.value.message == "The request must contain the parameter Name"
    with pytest.raises(KilnError) as blob:
        parse_query("ImportKeyPair", {"KeyName": ["k"], "PublicKeyMaterial": ["not base64!"]})
    assert blob.value.code.code == "InvalidParameterValue"
    with pytest.raises(KilnError) as action:
        parse_query("LaunchRockets", {})
    assert action.value.code.code == "InvalidAction"


def test_decode_form_rejects_invalid_utf8() -> None:
    assert decode_form(b"Name=caf%C3%A9&Empty=") == {"Name": ["café"], "Empty": [""]}
    with pytest.raises(KilnError) as caught:
        decode_form(b"Name=%FF")
    assert caught.value.code.code == "InvalidParameterValue"


# --- render_result: read back by botocore's EC2 parser -------------------------------------
@pytest.mark.parametrize("seed", range(2))
def test_render_result_round_trips_through_botocore_parser_for_every_operation(seed: int) -> None:
    rng = random.Random(seed)
    for action in sorted(service_model().operation_names):
        shape = service_model().operation_model(action).output_shape
        if shape is None:
            continue
        result = random_value(shape, rng, ms=True)
        parsed = parse_xml(action, render_result(action, result, "req-1"))
        assert parsed.pop("ResponseMetadata")["RequestId"] == "req-1"
        assert parsed == result, action


CREATED = datetime(2026, 11, 23, 10, 0, 0, 123000, tzinfo=UTC)

IMAGE = {
    "ImageId": "ami-0123456789abcdef0",
    "ImageLocation": "111122223333/web",
    "State": "available",
    "OwnerId": "111122223333",
    "CreationDate": "2026-11-23T10:00:00.000Z",
    "Public": False,
    "Architecture": "x86_64",
    "ImageType": "machine",
    "Name": "web & <db>",
    "RootDeviceType": "ebs",
    "RootDeviceName": "/dev/xvda",
    "VirtualizationType": "hvm",
    "Hypervisor": "xen",
    "EnaSupport": True,
    "BootMode": "uefi-preferred",
    "ProductCodes": [{"ProductCodeId": "abc123", "ProductCodeType": "marketplace"}],
    "BlockDeviceMappings": [
        {
            "DeviceName": "/dev/xvda",
            "Ebs": {
                "SnapshotId": "snap-1",
                "VolumeSize": 8,
                "DeleteOnTermination": True,
                "VolumeType": "gp3",
                "Encrypted": False,
            },
        },
        {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
    ],
    "Tags": [{"Key": "env", "Value": "prod"}, {"Key": "empty", "Value": ""}],
    "StateReason": {"Code": "x", "Message": "line1\r\nline2"},
}


def test_render_describe_images_uses_ec2_names_items_and_booleans() -> None:
    body = render_result("DescribeImages", {"Images": [IMAGE], "NextToken": None}, "r-1")
    text = body.decode()
    assert text.startswith(
        '<?xml version="1.0" encoding="UTF-8"?>\n<DescribeImagesResponse '
        'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r-1'
        "</requestId><imagesSet><item>"
    )
    assert "<isPublic>false</isPublic>" in text and "<imageState>available</imageState>" in text
    assert "<tagSet><item><key>env</key><value>prod</value></item>" in text
    assert "<name>web &amp; &lt;db&gt;</name>" in text and "nextToken" not in text
    assert parse_xml("DescribeImages", body)["Images"] == [IMAGE]


def test_render_describe_snapshots_and_image_attribute_round_trip() -> None:
    snapshots = {
        "Snapshots": [
            {
                "SnapshotId": "snap-1",
                "VolumeId": "vol-1",
                "State": "completed",
                "StartTime": CREATED,
                "Progress": "100%",
                "OwnerId": "111122223333",
                "VolumeSize": 8,
                "Encrypted": True,
                "Description": "Created by CreateImage",
                "Tags": [{"Key": "a", "Value": "b"}],
            }
        ]
    }
    body = render_result("DescribeSnapshots", snapshots, "r-2")
    assert b"<startTime>2026-11-23T10:00:00.123Z</startTime>" in body
    assert parse_xml("DescribeSnapshots", body)["Snapshots"] == snapshots["Snapshots"]

    attribute = {
        "ImageId": "ami-1",
        "Description": {"Value": "web"},
        "LaunchPermissions": [{"UserId": "444455556666"}, {"Group": "all"}],
        "ProductCodes": [],
        "BootMode": {"Value": "uefi"},
    }
    body = render_result("DescribeImageAttribute", attribute, "r-3")
    assert b"<productCodes></productCodes>" in body
    parsed = parse_xml("DescribeImageAttribute", body)
    parsed.pop("ResponseMetadata")
    assert parsed == attribute


def test_render_describe_instances_with_reservations_round_trip() -> None:
    result = {
        "Reservations": [
            {
                "ReservationId": "r-0123",
                "OwnerId": "111122223333",
                "Instances": [
                    {
                        "InstanceId": "i-1",
                        "ImageId": "ami-1",
                        "LaunchTime": CREATED,
                        "State": {"Code": 16, "Name": "running"},
                        "InstanceType": "t3.micro",
                        "PublicIpAddress": "127.0.0.1",
                        "AmiLaunchIndex": 0,
                        "BlockDeviceMappings": [
                            {
                                "DeviceName": "/dev/xvda",
                                "Ebs": {
                                    "VolumeId": "vol-1",
                                    "Status": "attached",
                                    "AttachTime": CREATED,
                                    "DeleteOnTermination": True,
                                },
                            }
                        ],
                        "Tags": [{"Key": "Name", "Value": "web"}],
                    }
                ],
            }
        ]
    }
    body = render_result("DescribeInstances", result, "r-4")
    assert b"<reservationSet><item><reservationId>r-0123</reservationId>" in body
    assert b"<instanceState><code>16</code><name>running</name></instanceState>" in body
    assert parse_xml("DescribeInstances", body)["Reservations"] == result["Reservations"]


def test_render_action_without_output_returns_true_like_ec2() -> None:
    body = render_result("CreateTags", {}, "r-5")
    assert body.endswith(b"<requestId>r-5</requestId><return>true</return></CreateTagsResponse>")


@pytest.mark.parametrize(
    "result",
    [
        {"Images": [{"ImageId": "ami-1", "Colour": "red"}]},
        {"Images": [{"ImageId": 7}]},
        {"Images": [{"Public": "true"}]},
        {"Images": {"ImageId": "ami-1"}},
    ],
)
def test_render_result_rejects_handler_bugs(result: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        render_result("DescribeImages", result, "r-6")


def test_render_error_is_read_by_botocore_as_ec2_error() -> None:
    body = render_error("InvalidAMIID.NotFound", "The image id '[ami-1]' does not exist", "r-7")
    parsed = EC2QueryParser().parse({"body": body, "headers": {}, "status_code": 400}, None)
    assert parsed["Error"] == {
        "Code": "InvalidAMIID.NotFound",
        "Message": "The image id '[ami-1]' does not exist",
    }
    assert parsed["ResponseMetadata"]["RequestId"] == "r-7"
