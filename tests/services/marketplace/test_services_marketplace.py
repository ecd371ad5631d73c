"""Marketplace rules without HTTP and without QEMU (kiln.compute.fake's driver runs the "VMs"):
publishing, subscriptions, OptInRequired, inherited product codes and the metered periods."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from services_fixtures import REGION, World, make_world

from kiln import errors
from kiln.catalog import Catalog
from kiln.catalog import images as cat_images
from kiln.catalog import instances as cat_instances
from kiln.catalog import marketplace as cat
from kiln.catalog import snapshots as cat_snapshots
from kiln.catalog.records import LaunchPermissionRecord, ProductCodeRecord
from kiln.catalog.snapshots import SnapshotPermissionRecord
from kiln.compute.fake import FakeDriver
from kiln.disks import raw_disk
from kiln.errors import KilnError
from kiln.runtime.instance_runtime import InstanceRuntime
from kiln.services.images.copy_image import CopyImageRequest, copy_image
from kiln.services.images.create_image import CreateImageRequest, create_image
from kiln.services.images.image_attributes import (
    ModifyImageAttributeRequest,
    modify_image_attribute,
)
from kiln.services.instances import instances as actions
from kiln.services.instances.run_instances import RunInstancesRequest, run_instances
from kiln.services.marketplace.metering import marketplace_usage
from kiln.services.marketplace.products import (
    PublishProductRequest,
    describe_products,
    publish_product,
)
from kiln.services.marketplace.subscriptions import (
    describe_subscriptions,
    subscribe,
    unsubscribe,
)
from kiln.services.snapshots.create_snapshot import create_snapshot
from kiln.services.snapshots.records import record_snapshot
from kiln.services.snapshots.snapshot_attributes import describe_snapshot_attribute
from kiln.types import new_id

MIB = 1024**2
WAIT_S = 60.0


@pytest.fixture
def vms(catalog: Catalog, tmp_path: Path) -> Iterator[World]:
    runtime = InstanceRuntime(FakeDriver(), "tcg", watch_interval=3600.0)
    world = make_world(catalog, tmp_path, compute=runtime)
    world.svc.jobs.start(world.svc)  # CreateImage and CopyImage run as jobs
    yield world
    world.svc.jobs.stop()
    runtime.close()


def _image(world: World, tmp_path: Path) -> str:
    """The owner's image, shared with the two other accounts."""
    disk = tmp_path / f"root-{new_id('x')}.raw"
    disk.write_bytes(b"\x5a" * MIB)
    sid = new_id("snap")
    world.svc.stores[REGION].import_disk(raw_disk(disk), sid)
    record_snapshot(world.svc.catalog, REGION, world.owner.account_id, sid, MIB)
    image_id = world.register(world.owner, f"appliance-{sid}", snapshot_id=sid)
    modify_image_attribute(
        world.svc,
        world.owner,
        ModifyImageAttributeRequest(
            image_id,
            add=(
                LaunchPermissionRecord(user_id=world.grantee.account_id),
                LaunchPermissionRecord(user_id=world.stranger.account_id),
            ),
        ),
    )
    return image_id


def _publish(world: World, image_id: str, **prices: str) -> str:
    view = publish_product(
        world.svc,
        world.owner,
        PublishProductRequest(
            (image_id,),
            "Appliance",
            "A tested appliance",
            tuple(prices.items()) or (("t3.micro", "0.05"),),
        ),
    )
    return view.product.product_code


def _wait(world: World) -> None:
    assert world.svc.compute is not None and world.svc.compute.wait_idle(WAIT_S)


def _state(world: World, iid: str) -> str:
    with world.svc.catalog.read() as tx:
        inst = cat_instances.get_instance(tx, iid, "")
    assert inst is not None
    return inst.state


def test_publish_product_attaches_its_code_to_the_images(vms: World, tmp_path: Path) -> None:
    image_id = _image(vms, tmp_path)
    code = _publish(vms, image_id, **{"t3.micro": "0.050", "m5.large": "1"})
    assert len(code) == 25 and code.isalnum() and code.islower()
    with vms.svc.catalog.read() as tx:
        image = cat_images.get_image(tx, image_id, "")
    assert image is not None
    assert image.product_codes == (ProductCodeRecord(code, "marketplace"),)
    [view] = describe_products(vms.svc)
    assert view.product.product_id.startswith("prod-") and view.image_ids == (image_id,)
    assert view.product.prices == (("m5.large", "1"), ("t3.micro", "0.05"))


@pytest.mark.parametrize(
    ("price", "field"),
    [
        (("t3.micro", "abc"), "price[t3.micro]"),
        (("t3.micro", "-0.01"), "price[t3.micro]"),
        (("t3.micro", "NaN"), "price[t3.micro]"),
        (("t3.micro", "Infinity"), "price[t3.micro]"),
        (("x9.nonsense", "0.1"), "price[x9.nonsense]"),
    ],
)
def test_publish_product_refuses_a_bad_price_naming_it_and_stores_nothing(
    vms: World, tmp_path: Path, price: tuple[str, str], field: str
) -> None:
    image_id = _image(vms, tmp_path)
    with pytest.raises(KilnError) as e:
        publish_product(vms.svc, vms.owner, PublishProductRequest((image_id,), "T", "D", (price,)))
    assert e.value.code == errors.InvalidParameterValue and field in e.value.message
    assert describe_products(vms.svc) == []
    with vms.svc.catalog.read() as tx:
        image = cat_images.get_image(tx, image_id, "")
    assert image is not None and image.product_codes == ()


def test_publish_product_refuses_another_accounts_image(vms: World, tmp_path: Path) -> None:
    image_id = _image(vms, tmp_path)
    with pytest.raises(KilnError) as e:
        publish_product(
            vms.svc, vms.grantee, PublishProductRequest((image_id,), "T", "", (("t3.micro", "1"),))
        )
    assert e.value.code == errors.NotAuthorizedForResource
    assert describe_products(vms.svc) == []


def test_subscribe_to_a_product_that_does_not_exist(vms: World) -> None:
    with pytest.raises(KilnError) as e:
        subscribe(vms.svc, vms.grantee.account_id, "prod-doesnotexist1")
    assert e.value.code == errors.MarketplaceProductNotFound
    assert "prod-doesnotexist1" in e.value.message


def test_launch_needs_a_subscription_except_for_the_vendor(vms: World, tmp_path: Path) -> None:
    image_id = _image(vms, tmp_path)
    code = _publish(vms, image_id)
    req = RunInstancesRequest(image_id, 1, 1, instance_type="t3.micro")
    with pytest.raises(KilnError) as e:
        run_instances(vms.svc, vms.grantee, req)
    assert e.value.code == errors.OptInRequired and e.value.code.http_status == 401
    assert e.value.message == (
        "In order to use this AWS Marketplace product you need to accept terms and subscribe. "
        f"To do so please visit https://aws.amazon.com/marketplace/pp?sku={code}"
    )
    with vms.svc.catalog.read() as tx:  # a refused launch records nothing
        assert cat_instances.query_instance_ids(tx, REGION, vms.grantee.account_id) == []

    own = run_instances(vms.svc, vms.owner, req).instances[0].instance
    assert own.product_codes == (ProductCodeRecord(code, "marketplace"),)

    assert subscribe(vms.svc, vms.grantee.account_id, code).changed
    assert not subscribe(vms.svc, vms.grantee.account_id, code).changed  # idempotent
    [sub] = describe_subscriptions(vms.svc, vms.grantee.account_id)
    assert sub.product.product_code == code
    bought = run_instances(vms.svc, vms.grantee, req).instances[0].instance
    assert bought.product_codes == (ProductCodeRecord(code, "marketplace"),)
    _wait(vms)

    assert unsubscribe(vms.svc, vms.grantee.account_id, code).changed
    assert describe_subscriptions(vms.svc, vms.grantee.account_id) == []
    with pytest.raises(KilnError) as e:
        run_instances(vms.svc, vms.grantee, req)
    assert e.value.code == errors.OptInRequired
    assert _state(vms, bought.instance_id) == "running"  # running ones keep running
    actions.stop_instances(vms.svc, vms.grantee, [bought.instance_id], False, False, False)
    _wait(vms)
    with pytest.raises(KilnError) as e:  # a stopped one starts only while subscribed
        actions.start_instances(vms.svc, vms.grantee, [bought.instance_id], False)
    assert e.value.code == errors.OptInRequired
    assert _state(vms, bought.instance_id) == "stopped"
    subscribe(vms.svc, vms.grantee.account_id, code)
    actions.start_instances(vms.svc, vms.grantee, [bought.instance_id], False)
    _wait(vms)
    assert _state(vms, bought.instance_id) == "running"


def _seconds(a: str, b: str) -> float:
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    return (datetime.strptime(b, fmt) - datetime.strptime(a, fmt)).total_seconds()


def test_metering_periods_follow_the_running_time(vms: World, tmp_path: Path) -> None:
    image_id = _image(vms, tmp_path)
    code = _publish(vms, image_id)
    subscribe(vms.svc, vms.grantee.account_id, code)
    iid = (
        run_instances(vms.svc, vms.grantee, RunInstancesRequest(image_id, 1, 1, "t3.micro"))
        .instances[0]
        .instance.instance_id
    )
    _wait(vms)
    assert _state(vms, iid) == "running"
    with vms.svc.catalog.read() as tx:
        [open_period] = cat.usage_periods(tx)
    assert open_period.ended is None and open_period.buyer_id == vms.grantee.account_id
    time.sleep(0.3)
    actions.stop_instances(vms.svc, vms.grantee, [iid], False, False, False)
    _wait(vms)
    assert _state(vms, iid) == "stopped"
    time.sleep(0.5)  # stopped: not metered
    actions.start_instances(vms.svc, vms.grantee, [iid], False)
    _wait(vms)
    time.sleep(0.3)
    actions.terminate_instances(vms.svc, vms.grantee, [iid], False)
    _wait(vms)
    assert _state(vms, iid) == "terminated"

    with vms.svc.catalog.read() as tx:
        periods = cat.usage_periods(tx)
    assert len(periods) == 2 and all(p.ended is not None for p in periods)
    assert all(p.instance_id == iid and p.instance_type == "t3.micro" for p in periods)
    assert periods[0].ended is not None and periods[1].ended is not None
    assert _seconds(periods[0].ended, periods[1].started) >= 0.5  # the stopped time

    expected = sum(_seconds(p.started, p.ended or "") for p in periods)
    [line] = marketplace_usage(vms.svc, vms.grantee.account_id)
    assert line.product_code == code and line.buyer_id == vms.grantee.account_id
    assert line.instance_type == "t3.micro" and line.periods == 2 and not line.running
    assert line.seconds == pytest.approx(expected, abs=0.001) and line.seconds >= 0.6
    assert line.usd_per_hour == "0.05"
    assert float(line.charge_usd or "") == pytest.approx(0.05 * expected / 3600, abs=1e-6)
    # the vendor sees its buyers' usage; a stranger sees none
    assert marketplace_usage(vms.svc, vms.owner.account_id) == [line]
    assert marketplace_usage(vms.svc, vms.stranger.account_id) == []


def test_the_vendors_own_instances_are_not_metered(vms: World, tmp_path: Path) -> None:
    image_id = _image(vms, tmp_path)
    _publish(vms, image_id)
    run_instances(vms.svc, vms.owner, RunInstancesRequest(image_id, 1, 1, "t3.micro"))
    _wait(vms)
    assert marketplace_usage(vms.svc) == []


def test_product_codes_are_inherited_and_stay(vms: World, tmp_path: Path) -> None:
    image_id = _image(vms, tmp_path)
    code = _publish(vms, image_id)
    subscribe(vms.svc, vms.grantee.account_id, code)
    iid = (
        run_instances(vms.svc, vms.grantee, RunInstancesRequest(image_id, 1, 1, "t3.micro"))
        .instances[0]
        .instance.instance_id
    )
    _wait(vms)
    made = create_image(
        vms.svc, vms.grantee, CreateImageRequest(iid, "buyers-copy", no_reboot=True)
    )
    assert vms.svc.jobs.wait_idle(WAIT_S)
    with vms.svc.catalog.read() as tx:
        mine = cat_images.get_image(tx, made, "")
    assert mine is not None and mine.owner_id == vms.grantee.account_id
    assert mine.product_codes == (ProductCodeRecord(code, "marketplace"),)

    # the buyer cannot make it public, nor copy the vendor's image to its account
    with pytest.raises(KilnError) as e:
        modify_image_attribute(
            vms.svc,
            vms.grantee,
            ModifyImageAttributeRequest(made, add=(LaunchPermissionRecord(group="all"),)),
        )
    assert e.value.code == errors.InvalidParameter
    assert e.value.message == "AMIs with a product code can not be made public."
    with pytest.raises(KilnError) as e:
        copy_image(vms.svc, vms.grantee, CopyImageRequest(image_id, REGION, "stolen"))
    assert e.value.code == errors.InvalidRequest
    assert "cannot be copied to another AWS account" in e.value.message

    # the buyer's own image copies, with its code; a launch of it still needs the subscription
    copied = copy_image(vms.svc, vms.grantee, CopyImageRequest(made, REGION, "buyers-copy-2"))
    with vms.svc.catalog.read() as tx:
        again = cat_images.get_image(tx, copied, "")
    assert again is not None and again.product_codes == mine.product_codes
    unsubscribe(vms.svc, vms.grantee.account_id, code)
    assert vms.svc.jobs.wait_idle(WAIT_S)
    with pytest.raises(KilnError) as e:
        run_instances(vms.svc, vms.grantee, RunInstancesRequest(made, 1, 1, "t3.micro"))
    assert e.value.code == errors.OptInRequired


def test_a_snapshot_of_a_buyers_volume_keeps_the_product_code(vms: World, tmp_path: Path) -> None:
    """CreateSnapshot of the instance's root volume, then RegisterImage: the code stays."""
    image_id = _image(vms, tmp_path)
    code = _publish(vms, image_id)
    subscribe(vms.svc, vms.grantee.account_id, code)
    res = run_instances(vms.svc, vms.grantee, RunInstancesRequest(image_id, 1, 1, "t3.micro"))
    vol = res.instances[0].volumes[0].volume_id
    _wait(vms)
    snap = create_snapshot(vms.svc, vms.grantee, vol, None, (), False).snapshot_id
    assert vms.svc.jobs.wait_idle(WAIT_S)
    got = describe_snapshot_attribute(vms.svc, vms.grantee, snap, "productCodes", False)
    assert got.product_codes == (code,)
    made = vms.register(vms.grantee, "from-the-snapshot", snapshot_id=snap)
    with vms.svc.catalog.read() as tx:
        image = cat_images.get_image(tx, made, "")
    assert image is not None and image.product_codes == (ProductCodeRecord(code, "marketplace"),)
    unsubscribe(vms.svc, vms.grantee.account_id, code)
    with pytest.raises(KilnError) as e:
        run_instances(vms.svc, vms.grantee, RunInstancesRequest(made, 1, 1, "t3.micro"))
    assert e.value.code == errors.OptInRequired


def test_a_vendor_cannot_mark_another_accounts_snapshot(vms: World) -> None:
    """An image the vendor registers from a snapshot it does not own marks only that image."""
    theirs = vms.snapshot(vms.grantee)
    with vms.svc.catalog.write() as tx:  # the grantee lets the vendor use its snapshot
        cat_snapshots.add_snapshot_permissions(
            tx, theirs, [SnapshotPermissionRecord(user_id=vms.owner.account_id)]
        )
    vendors = vms.register(vms.owner, "on-a-borrowed-snapshot", snapshot_id=theirs)
    code = _publish(vms, vendors)
    with vms.svc.catalog.read() as tx:
        vendor_image = cat_images.get_image(tx, vendors, "")
    assert vendor_image is not None and vendor_image.product_codes[0].product_code_id == code
    again = vms.register(vms.grantee, "the-owners-own", snapshot_id=theirs)
    with vms.svc.catalog.read() as tx:
        own = cat_images.get_image(tx, again, "")
    assert own is not None and own.product_codes == ()
