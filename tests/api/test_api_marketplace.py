"""The marketplace end to end: a vendor publishes (`kiln marketplace publish`), a buyer is
refused with OptInRequired, subscribes, launches a real micro VM (QEMU under TCG), stops, starts
and terminates it, and `kiln marketplace usage` shows the time it ran; the buyer's image of the
instance carries the product code. Unmodified boto3 against a live `kiln serve`.

One server for the module (SQLite); the micro image is baked once, as in test_api_instances.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from api_live import Creds, LiveKiln
from botocore.exceptions import ClientError
from test_api_instances import REGION, TYPE, _until, micro_server, wait_state

pytestmark = pytest.mark.slow

POLL_S = 0.05  # how often the running state is looked for: the measurement's resolution


@dataclass
class World:
    kiln: LiveKiln
    vendor: Creds
    buyer: Creds
    micro: str

    def ec2(self, creds: Creds) -> Any:
        return self.kiln.client(creds, REGION)

    def cli(self, *args: str) -> Any:
        """``kiln marketplace ARGS --json`` on the server's data dir: (exit code, JSON, stderr)."""
        res = self.kiln.kiln("marketplace", *args, "--data-dir", str(self.kiln.data_dir), "--json")
        return res.returncode, json.loads(res.stdout) if res.returncode == 0 else None, res.stderr


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with micro_server(tmp_path_factory.mktemp("kiln-market"), ("vendor", "buyer"), REGION) as (
        kiln,
        accounts,
        micro,
    ):
        yield World(kiln, accounts[0], accounts[1], micro)


def _available(ec2: Any, image_id: str) -> dict[str, Any]:
    return _until(
        f"{image_id} available",
        lambda: next(
            (i for i in ec2.describe_images(ImageIds=[image_id])["Images"] if i["State"] == "available"),
            None,
        ),
    )  # fmt: skip


def _running_since(ec2: Any, iid: str) -> tuple[float, float]:
    """Poll until ``iid`` is running: (the last moment it was seen not running, the first it
    was seen running), in time.time() seconds. The transition happened between the two."""
    before = time.time()
    deadline = time.monotonic() + 300
    while True:
        inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        now = time.time()
        if inst["State"]["Name"] == "running":
            return before, now
        assert inst["State"]["Name"] == "pending", inst.get("StateReason")
        assert time.monotonic() < deadline, f"{iid} never ran"
        before = now
        time.sleep(POLL_S)


def _timed(call: Any) -> tuple[float, float]:
    """(just before, just after) ``call()``: the state change it makes happens in between."""
    before = time.time()
    call()
    return before, time.time()


def test_vendor_publishes_buyer_subscribes_and_usage_is_metered(world: World) -> None:
    vendor, buyer = world.ec2(world.vendor), world.ec2(world.buyer)
    mine = vendor.copy_image(SourceImageId=world.micro, SourceRegion=REGION, Name="appliance")[
        "ImageId"
    ]
    _available(vendor, mine)
    vendor.modify_image_attribute(
        ImageId=mine, LaunchPermission={"Add": [{"UserId": world.buyer.account_id}]}
    )

    # a bad price is refused with the field named, one line, exit 1, nothing stored
    res = world.kiln.kiln(
        "marketplace", "publish", "--account", world.vendor.account_id, "--image", mine,
        "--title", "Appliance", "--price", "t2.micro=cheap", "--data-dir", str(world.kiln.data_dir),
    )  # fmt: skip
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and "price[t2.micro]" in res.stderr
    assert world.cli("ls")[1] == []

    rc, product, err = world.cli(
        "publish", "--account", world.vendor.account_id, "--image", mine, "--title", "Appliance",
        "--description", "A tested appliance", "--price", f"{TYPE}=0.05", "--price", "m5.large=1",
    )  # fmt: skip
    assert rc == 0, err
    code = product["ProductCode"]
    assert product["ImageIds"] == [mine] and product["ProductId"].startswith("prod-")
    assert [p["ProductCode"] for p in world.cli("ls")[1]] == [code]
    pcs = [{"ProductCodeId": code, "ProductCodeType": "marketplace"}]
    assert vendor.describe_image_attribute(ImageId=mine, Attribute="productCodes")[
        "ProductCodes"
    ] == pcs  # fmt: skip
    for name, value in (("product-code", code), ("product-code.type", "marketplace")):
        found = vendor.describe_images(Owners=["self"], Filters=[{"Name": name, "Values": [value]}])
        assert [i["ImageId"] for i in found["Images"]] == [mine]
        assert found["Images"][0]["ProductCodes"] == pcs

    # the buyer: refused until it subscribes
    with pytest.raises(ClientError) as e:
        buyer.run_instances(ImageId=mine, MinCount=1, MaxCount=1, InstanceType=TYPE)
    assert e.value.response["Error"]["Code"] == "OptInRequired"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    assert e.value.response["Error"]["Message"] == (
        "In order to use this AWS Marketplace product you need to accept terms and subscribe. "
        f"To do so please visit https://aws.amazon.com/marketplace/pp?sku={code}"
    )
    assert buyer.describe_instances()["Reservations"] == []
    rc, _, err = world.cli("subscribe", "--account", world.buyer.account_id, "prod-nosuchproduct")
    assert rc == 1 and "ResourceNotFoundException" in err and "prod-nosuchproduct" in err
    rc, _, err = world.cli("subscribe", "--account", world.buyer.account_id, product["ProductId"])
    assert rc == 0, err
    subs = world.cli("ls", "--account", world.buyer.account_id)[1]
    assert [s["ProductCode"] for s in subs] == [code]

    # launch, stop, start, terminate: two periods of running time
    iid = buyer.run_instances(ImageId=mine, MinCount=1, MaxCount=1, InstanceType=TYPE)["Instances"][
        0
    ]["InstanceId"]
    periods = []
    started = _running_since(buyer, iid)
    inst = buyer.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert inst["ProductCodes"] == pcs
    for name, value in (("product-code", code), ("product-code.type", "marketplace")):
        found = buyer.describe_instances(Filters=[{"Name": name, "Values": [value]}])
        assert [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]] == [iid]
    time.sleep(2)
    periods.append((started, _timed(lambda: buyer.stop_instances(InstanceIds=[iid]))))
    wait_state(buyer, iid, "stopped")
    made = buyer.create_image(InstanceId=iid, Name="buyers-appliance")["ImageId"]
    image = _available(buyer, made)
    assert image["ProductCodes"] == pcs and image["OwnerId"] == world.buyer.account_id
    time.sleep(1)  # stopped: not metered
    # unsubscribed, the buyer cannot start it again
    assert world.cli("unsubscribe", "--account", world.buyer.account_id, code)[0] == 0
    with pytest.raises(ClientError) as e:
        buyer.start_instances(InstanceIds=[iid])
    assert e.value.response["Error"]["Code"] == "OptInRequired"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    assert buyer.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0][
        "State"
    ]["Name"] == "stopped"  # fmt: skip
    assert world.cli("subscribe", "--account", world.buyer.account_id, code)[0] == 0
    buyer.start_instances(InstanceIds=[iid])
    started = _running_since(buyer, iid)
    time.sleep(1)
    periods.append((started, _timed(lambda: buyer.terminate_instances(InstanceIds=[iid]))))
    wait_state(buyer, iid, "terminated")

    # the buyer cannot make its image public, nor copy the vendor's image to its account
    with pytest.raises(ClientError) as e:
        buyer.modify_image_attribute(ImageId=made, LaunchPermission={"Add": [{"Group": "all"}]})
    assert e.value.response["Error"]["Code"] == "InvalidParameter"
    assert "product code" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        buyer.copy_image(SourceImageId=mine, SourceRegion=REGION, Name="stolen")
    assert e.value.response["Error"]["Code"] == "InvalidRequest"

    rc, report, err = world.cli("usage", "--account", world.buyer.account_id)
    assert rc == 0, err
    [line] = report["Usage"]
    assert line["ProductCode"] == code and line["BuyerId"] == world.buyer.account_id
    assert line["InstanceType"] == TYPE and line["Periods"] == 2 and not line["Running"]
    # each period began between the last poll that saw it pending and the first that saw it
    # running, and ended during the Stop/TerminateInstances call
    shortest = sum(end[0] - start[1] for start, end in periods)
    longest = sum(end[1] - start[0] for start, end in periods)
    assert shortest - 0.002 <= line["Seconds"] <= longest + 0.002
    assert abs(line["Seconds"] - (shortest + longest) / 2) < 1.0
    assert line["Hours"] == pytest.approx(line["Seconds"] / 3600, abs=1e-6)
    assert world.cli("usage", "--account", world.vendor.account_id)[1]["Usage"] == [line]
