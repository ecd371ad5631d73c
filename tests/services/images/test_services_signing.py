"""The signing rules (kiln/services/images/signing.py) on a real catalog and store: what a
signature covers, what verification answers, and the policy RunInstances and CopyImage call.
The live end-to-end tests are tests/api/test_api_signing.py."""

from __future__ import annotations

import pytest
from services_fixtures import GIB, REGION, World

from kiln.errors import KilnError
from kiln.services.images.image_attributes import (
    ModifyImageAttributeRequest,
    modify_image_attribute,
)
from kiln.services.images.signing import (
    add_trusted_key,
    check_signature_policy,
    set_signature_required,
    sign_image,
    verify_image,
)
from kiln.services.images.signing_keys import generate_key
from kiln.store.manifest import Manifest


def _image(world: World, name: str, with_manifest: bool = True) -> tuple[str, str]:
    sid = world.snapshot(world.owner)
    if with_manifest:
        m = Manifest(snapshot_id=sid, virtual_size=GIB)
        m.add(0, 4096, bytes(32))
        world.svc.stores[REGION].commit(m)
    return world.register(world.owner, name, snapshot_id=sid), sid


def test_sign_image_then_a_changed_signed_field_fails_verification(world: World) -> None:
    key = generate_key()
    image_id, _ = _image(world, "signed")
    sig = sign_image(world.svc, REGION, image_id, key.private_pem, "k")
    assert sig.key_id == key.key_id and sig.signed_by == world.owner.account_id
    got = verify_image(world.svc, REGION, image_id, [("k.pub", key.public_pem)])
    assert got.valid and got.trusted and got.key_id == key.key_id
    # the region trusts nothing yet
    got = verify_image(world.svc, REGION, image_id)
    assert not got.valid
    assert (
        got.reason == f"{image_id} is signed by key {key.key_id}, which is not trusted in {REGION}"
    )

    add_trusted_key(world.svc, REGION, key.public_pem, "k.pub")
    assert verify_image(world.svc, REGION, image_id).valid
    # ImdsSupport decides how the instance's metadata answers: it is signed
    modify_image_attribute(
        world.svc, world.owner, ModifyImageAttributeRequest(image_id, imds_support="v2.0")
    )
    got = verify_image(world.svc, REGION, image_id)
    assert not got.valid
    assert got.reason == f"{image_id} changed since it was signed: its ImdsSupport differs"


def test_an_image_without_its_manifest_cannot_be_signed(world: World) -> None:
    image_id, sid = _image(world, "no-manifest", with_manifest=False)
    with pytest.raises(KilnError) as e:
        sign_image(world.svc, REGION, image_id, generate_key().private_pem, "k")
    assert e.value.code.code == "InvalidSnapshot.NotFound"
    assert sid in e.value.message
    assert verify_image(world.svc, REGION, image_id).reason == f"{image_id} is not signed"


def test_the_policy_refuses_only_when_the_region_requires_signatures(world: World) -> None:
    key = generate_key()
    image_id, _ = _image(world, "policy")
    with world.svc.catalog.read() as tx:
        from kiln.catalog import images as cat_images

        image = cat_images.get_image(tx, image_id, world.owner.account_id)
        assert image is not None
        check_signature_policy(tx, world.svc, world.owner, image, "launch instances with")
    with pytest.raises(KilnError) as e:
        set_signature_required(world.svc, REGION, True)
    assert e.value.message == f"{REGION} trusts no signing key: add one first (kiln trust add)."
    add_trusted_key(world.svc, REGION, key.public_pem, "k.pub")
    set_signature_required(world.svc, REGION, True)
    with world.svc.catalog.read() as tx, pytest.raises(KilnError) as e:
        check_signature_policy(tx, world.svc, world.grantee, image, "launch instances with")
    assert e.value.code.code == "UnauthorizedOperation"
    assert e.value.message.endswith(f"and {image_id} is not signed.")
    sign_image(world.svc, REGION, image_id, key.private_pem, "k")
    with world.svc.catalog.read() as tx:
        check_signature_policy(tx, world.svc, world.grantee, image, "launch instances with")
