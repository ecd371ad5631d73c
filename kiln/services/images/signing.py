"""Image signing (docs/signing.md): an owner signs an image with an ed25519 key, anyone with
the catalog verifies it, and the operator's trusted keys and region policy make RunInstances
and CopyImage refuse an image without a valid signature by a trusted key.

A signature covers the canonical document of kiln/services/images/signing_document.py: the
image's launch-relevant fields and the SHA-256 of every manifest it launches from. Verification
recomputes that document from the catalog and the store, so a changed manifest or field fails
it, and checks the signature over the signed document with the key recorded beside it; the key
must then be trusted (the region's keys, or those handed to ``kiln image verify``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from cryptography.exceptions import InvalidSignature

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import images as cat_images
from kiln.catalog import signing as cat
from kiln.catalog.records import ImageRecord, utc_now
from kiln.catalog.signing import ImageSignatureRecord, TrustedKeyRecord
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.images import signing_document as doc
from kiln.services.images.access import not_found, owned_image
from kiln.services.images.signing_keys import (
    key_id,
    load_private_key,
    load_public_key,
    public_from_raw,
    raw_public,
)
from kiln.services.snapshots.copy_snapshot import check_region
from kiln.services.validate import check_image_id

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Verification:
    """``kiln image verify``'s answer. ``reason`` is one line that reads after "ami-… is
    valid: " or names what fails, starting with the image id."""

    image_id: str
    region: str
    valid: bool
    reason: str
    key_id: str | None = None
    trusted: bool = False
    signed_by: str | None = None
    signed_at: str | None = None
    digest: str | None = None


def _image_in(tx: Tx, region: str, image_id: str) -> ImageRecord:
    check_image_id(image_id)
    image = cat_images.get_image(tx, image_id, "")
    if image is None or image.region != region or image.state == "deregistered":
        raise not_found([image_id])
    return image


# --- sign --------------------------------------------------------------------------------------


def sign_image(
    services: Services,
    region: str,
    image_id: str,
    private_key: bytes,
    key_name: str = "the key",
    account_id: str | None = None,
) -> ImageSignatureRecord:
    """Sign ``image_id`` in ``region`` as its owner (``account_id``, when given, must own it),
    replacing any earlier signature. The image must be ``available`` with every manifest in
    the store. :raises KilnError: InvalidParameterValue (the key), InvalidAMIID.* (the image),
    AuthFailure (another account's image)."""
    check_region(services, region, "region")
    key = load_private_key(private_key, key_name)
    store = services.stores[region]
    with services.catalog.write() as tx:
        image = _image_in(tx, region, image_id)
        owner = account_id if account_id is not None else image.owner_id
        image = owned_image(tx, Caller(owner, region), image_id)
        if image.state != "available":
            raise KilnError(
                errors.InvalidAMIIDUnavailable,
                f"The image id '[{image_id}]' is {image.state} and cannot be signed.",
            )
        document = doc.image_document(store, image)
        for entry in document["Snapshots"]:
            if entry["ManifestSha256"] is None:
                raise KilnError(
                    errors.InvalidSnapshotNotFound,
                    f"Image {image_id} cannot be signed: the manifest of "
                    f"{entry['SnapshotId']} is missing from the store.",
                )
        body = doc.canonical(document)
        digest = doc.digest(body)
        public = raw_public(key.public_key())
        record = ImageSignatureRecord(
            image_id=image.image_id,
            region=region,
            key_id=key_id(public),
            public_key=public,
            document=body.decode("ascii"),
            digest=digest.hex(),
            signature=key.sign(digest),
            signed_by=owner,
            signed_at=utc_now(),
        )
        cat.put_signature(tx, record)
    log.info("image %s/%s signed by %s (key %s)", region, image_id, owner, record.key_id)
    return record


# --- verify ------------------------------------------------------------------------------------


def _verify(
    tx: Tx,
    services: Services,
    image: ImageRecord,
    trusted: Sequence[TrustedKeyRecord],
    trust_region: str,
) -> Verification:
    """``trusted``: the keys that count (``trust_region``'s, for the messages)."""
    iid, region = image.image_id, image.region
    sig = cat.get_signature(tx, iid)
    if sig is None:
        return Verification(iid, region, False, f"{iid} is not signed")
    fails = Verification(
        iid, region, False, "", sig.key_id, False, sig.signed_by, sig.signed_at, sig.digest
    )
    body = sig.document.encode("ascii", errors="replace")
    digest = doc.digest(body)
    try:
        if digest.hex() != sig.digest or key_id(sig.public_key) != sig.key_id:
            raise InvalidSignature
        public_from_raw(sig.public_key).verify(sig.signature, digest)
        signed = json.loads(body)
    except (InvalidSignature, ValueError):
        return replace(
            fails,
            reason=f"{iid}: its signature does not match its signed document (the signature "
            "record was altered)",
        )
    now = doc.image_document(services.stores[region], image)
    if doc.canonical(now) != body:
        change = doc.first_difference(signed, now)
        return replace(fails, reason=f"{iid} changed since it was signed: {change}")
    if not any(k.key_id == sig.key_id and k.public_key == sig.public_key for k in trusted):
        return replace(
            fails,
            reason=f"{iid} is signed by key {sig.key_id}, which is not trusted in {trust_region}",
        )
    return replace(
        fails,
        valid=True,
        trusted=True,
        reason=f"{iid} is signed by trusted key {sig.key_id} (account {sig.signed_by}, "
        f"{sig.signed_at})",
    )


def verify_image(
    services: Services,
    region: str,
    image_id: str,
    trusted_keys: Sequence[tuple[str, bytes]] | None = None,
) -> Verification:
    """Verify ``image_id``'s signature. ``trusted_keys``: ``(file name, key file bytes)`` to
    trust instead of the region's trusted keys. :raises KilnError: only for a bad request (an
    unknown region or image, a key file that is no ed25519 public key); every failure of the
    signature itself is an invalid ``Verification``."""
    check_region(services, region, "region")
    given = None
    if trusted_keys is not None:
        given = [_trusted(region, data, name, None) for name, data in trusted_keys]
    with services.catalog.read() as tx:
        image = _image_in(tx, region, image_id)
        keys = given if given is not None else cat.trusted_keys(tx, region)
        return _verify(tx, services, image, keys, region)


# --- the policy --------------------------------------------------------------------------------


def check_signature_policy(
    tx: Tx, services: Services, caller: Caller, image: ImageRecord, doing: str
) -> None:
    """RunInstances (``doing`` "launch instances with") and CopyImage ("copy"): when
    ``caller.region`` requires signatures, ``image`` must have a valid signature by a key
    trusted in that region. :raises KilnError: UnauthorizedOperation with the reason."""
    if not cat.signature_required(tx, caller.region):
        return
    result = _verify(tx, services, image, cat.trusted_keys(tx, caller.region), caller.region)
    if not result.valid:
        raise KilnError(
            errors.UnauthorizedOperation,
            f"You are not authorized to {doing} this image: {caller.region} requires images "
            f"signed by a trusted key, and {result.reason}.",
        )


# --- the operator's trusted keys and policy (kiln trust) -----------------------------------------


def _trusted(region: str, data: bytes, name: str, comment: str | None) -> TrustedKeyRecord:
    public = raw_public(load_public_key(data, name))
    return TrustedKeyRecord(region, key_id(public), public, comment, utc_now())


def add_trusted_key(
    services: Services, region: str, public_key: bytes, name: str, comment: str | None = None
) -> TrustedKeyRecord:
    """Trust the ed25519 public key (file ``name``'s bytes) in ``region``; idempotent."""
    check_region(services, region, "region")
    if comment is not None and len(comment) > 256:
        raise KilnError(errors.InvalidParameterValue, "A key comment is at most 256 characters.")
    key = _trusted(region, public_key, name, comment)
    with services.catalog.write() as tx:
        cat.add_trusted_key(tx, key)
    log.info("key %s trusted in %s", key.key_id, region)
    return key


def list_trusted_keys(services: Services, region: str | None = None) -> list[TrustedKeyRecord]:
    if region is not None:
        check_region(services, region, "region")
    with services.catalog.read() as tx:
        return cat.trusted_keys(tx, region)


def remove_trusted_key(services: Services, region: str, key: str) -> str:
    """Stop trusting ``key`` (a key id, or the bytes of its public key file as text) in
    ``region``; returns the key id. :raises KilnError: InvalidParameterValue if not trusted."""
    check_region(services, region, "region")
    kid = key if key.startswith("ed25519:") else _trusted(region, key.encode(), "KEY", None).key_id
    with services.catalog.write() as tx:
        if not cat.remove_trusted_key(tx, region, kid):
            raise KilnError(errors.InvalidParameterValue, f"Key {kid} is not trusted in {region}.")
    log.info("key %s no longer trusted in %s", kid, region)
    return kid


def signature_required(services: Services, region: str) -> bool:
    check_region(services, region, "region")
    with services.catalog.read() as tx:
        return cat.signature_required(tx, region)


def set_signature_required(services: Services, region: str, required: bool) -> None:
    """Make ``region`` require (or not) a valid signature by a trusted key for RunInstances and
    CopyImage. Turning it on needs at least one trusted key in the region."""
    check_region(services, region, "region")
    with services.catalog.write() as tx:
        if required and not cat.trusted_keys(tx, region):
            raise KilnError(
                errors.InvalidParameterValue,
                f"{region} trusts no signing key: add one first (kiln trust add).",
            )
        cat.set_signature_required(tx, region, required, utc_now())
    log.info("signatures %s in %s", "required" if required else "not required", region)
