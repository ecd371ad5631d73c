"""`kiln marketplace publish|ls|subscribe|unsubscribe|usage` as scripts use them: JSON out, one
`error:` line and exit 1 on bad input, nothing stored by a refusal (docs/marketplace.md)."""

from __future__ import annotations

import json
from pathlib import Path

from test_cli_alias import kiln, one_error_line

from kiln.app import build_services
from kiln.catalog.records import BlockDeviceRecord, EbsRecord
from kiln.config import Settings
from kiln.services.accounts.accounts import create_account
from kiln.services.context import Caller
from kiln.services.images.images import RegisterImageRequest, register_image
from kiln.services.snapshots.records import record_snapshot
from kiln.types import new_id


def _vendor_image(data_dir: Path) -> tuple[str, str, str]:
    """(vendor id, buyer id, the vendor's image id)."""
    services = build_services(Settings(data_dir=data_dir), compute=None)
    try:
        vendor = create_account(services.catalog, "vendor").account_id
        buyer = create_account(services.catalog, "buyer").account_id
        who = Caller(vendor, "us-east-1")
        sid = new_id("snap")
        record_snapshot(services.catalog, who.region, who.account_id, sid, 1 << 30)
        image_id = register_image(
            services,
            who,
            RegisterImageRequest(
                name="appliance",
                root_device_name="/dev/xvda",
                virtualization_type="hvm",
                block_devices=(BlockDeviceRecord("/dev/xvda", ebs=EbsRecord(snapshot_id=sid)),),
            ),
        )
        return vendor, buyer, image_id
    finally:
        services.catalog.close()


def test_marketplace_publish_subscribe_and_refusals(tmp_path: Path) -> None:
    vendor, buyer, image_id = _vendor_image(tmp_path)
    publish = ("marketplace", "publish", "--account", vendor, "--image", image_id, "--title", "T")
    for price, field in (
        ("t3.micro=abc", "price[t3.micro]"),
        ("t3.micro=-1", "price[t3.micro]"),
        ("x9.huge=1", "price[x9.huge]"),
        ("t3.micro", "price"),
    ):
        one_error_line(kiln(tmp_path, *publish, "--price", price), "InvalidParameterValue", field)
    assert json.loads(kiln(tmp_path, "marketplace", "ls", "--json").stdout) == []

    res = kiln(tmp_path, *publish, "--price", "t3.micro=0.05", "--json")
    assert res.returncode == 0, res.stderr
    product = json.loads(res.stdout)
    assert product["VendorId"] == vendor and product["ImageIds"] == [image_id]
    assert product["Prices"] == [{"InstanceType": "t3.micro", "UsdPerHour": "0.05"}]
    listed = kiln(tmp_path, "marketplace", "ls")
    assert listed.returncode == 0 and product["ProductId"] in listed.stdout

    one_error_line(
        kiln(tmp_path, "marketplace", "subscribe", "--account", buyer, "prod-nosuchproduct"),
        "ResourceNotFoundException",
        "prod-nosuchproduct",
    )
    res = kiln(tmp_path, "marketplace", "subscribe", "--account", buyer, product["ProductCode"])
    assert res.returncode == 0 and "subscribed to" in res.stdout
    subs = json.loads(kiln(tmp_path, "marketplace", "ls", "--account", buyer, "--json").stdout)
    assert [s["ProductId"] for s in subs] == [product["ProductId"]]
    res = kiln(
        tmp_path, "marketplace", "unsubscribe", "--account", buyer, product["ProductId"], "--json"
    )
    assert json.loads(res.stdout)["Changed"] is True
    assert (
        json.loads(kiln(tmp_path, "marketplace", "ls", "--account", buyer, "--json").stdout) == []
    )

    res = kiln(tmp_path, "marketplace", "usage", "--json")
    assert res.returncode == 0 and json.loads(res.stdout) == {"Usage": []}
    res = kiln(tmp_path, "marketplace", "usage")
    assert res.returncode == 0 and "marketplace usage" in res.stdout
