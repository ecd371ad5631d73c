"""The KMS API's rules: the account's keys in a region, their aliases, states and tags.

One function per KMS action (``create_key``, ``describe_key``, ...). The keys are the ones EC2
encrypts snapshots with (kiln/services/kms.py); ``alias/aws/ebs`` names the account's
AWS-managed EBS key, made on first use as on AWS (DescribeKey of the alias makes it too) and
always listed by ListAliases. Key states are one table (``TRANSITIONS``); what a state means for
EC2 is kiln/services/keys/kms_state.py. See docs/kms.md.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from kiln import errors
from kiln.catalog import Catalog, Conflict, Tx
from kiln.catalog import kms as cat
from kiln.catalog import kms_keys as cat_keys
from kiln.catalog.records import KmsAliasRecord, KmsKeyRecord
from kiln.errors import KilnError
from kiln.services.context import Caller
from kiln.services.keys.kms import DEFAULT_ALIAS, default_key
from kiln.services.keys.kms_state import key_arn

#: action -> (states it acts on, the state it leaves). Any other state: KMSInvalidStateException.
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "EnableKey": (frozenset({"Enabled", "Disabled"}), "Enabled"),
    "DisableKey": (frozenset({"Enabled", "Disabled"}), "Disabled"),
    "ScheduleKeyDeletion": (frozenset({"Enabled", "Disabled"}), "PendingDeletion"),
    "CancelKeyDeletion": (frozenset({"PendingDeletion"}), "Disabled"),
}
#: What CreateKey supports (everything else is UnsupportedOperationException).
SUPPORTED = {
    "KeyUsage": "ENCRYPT_DECRYPT",
    "KeySpec": "SYMMETRIC_DEFAULT",
    "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
    "Origin": "AWS_KMS",
}
MAX_TAGS = 50
DEFAULT_WINDOW_DAYS = 30
_ALIAS_RE = re.compile(r"^alias/[a-zA-Z0-9/_-]{1,250}$")
_ARN_RE = re.compile(
    r"^arn:aws:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"(?P<kind>key|alias)/(?P<name>.+)$"
)


@dataclass(frozen=True, slots=True)
class CreateKeyRequest:
    description: str = ""
    options: tuple[tuple[str, str], ...] = ()  # (KeyUsage|KeySpec|..., value) as sent
    multi_region: bool = False
    custom_key_store: bool = False
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class AliasView:
    """One ListAliases entry: a caller's alias, or an AWS-managed one (maybe without a key)."""

    alias_name: str
    alias_arn: str
    target_key_id: str | None
    created: str | None


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_marker: str | None


def is_aws_managed(key: KmsKeyRecord) -> bool:
    return key.alias is not None and key.alias.startswith("alias/aws/")


def alias_arn(caller: Caller, alias_name: str) -> str:
    return f"arn:aws:kms:{caller.region}:{caller.account_id}:{alias_name}"


def _not_found(key_id: str) -> KilnError:
    return KilnError(errors.KmsNotFound, f"Key '{key_id[:256]}' does not exist")


def _find(tx: Tx, catalog: Catalog, caller: Caller, key_id: str) -> KmsKeyRecord | None:
    name = key_id
    m = _ARN_RE.match(key_id)
    if m:
        if m.group("region") != caller.region or m.group("account") != caller.account_id:
            return None
        name = m.group("name") if m.group("kind") == "key" else f"alias/{m.group('name')}"
    if name.startswith("alias/"):
        found = cat.kms_key_by_alias(tx, catalog.sealer, caller.account_id, caller.region, name)
        if found is None:
            alias = cat_keys.get_alias(tx, caller.account_id, caller.region, name)
            found = cat.get_kms_key(tx, catalog.sealer, alias.key_id) if alias else None
    else:
        found = cat.get_kms_key(tx, catalog.sealer, name)
    if found is None or found.account_id != caller.account_id or found.region != caller.region:
        return None
    return found


def find_key(catalog: Catalog, caller: Caller, key_id: str) -> KmsKeyRecord:
    """The caller's key named by ``key_id`` (key id, key ARN, alias name or alias ARN) in the
    caller's region; ``alias/aws/ebs`` is made on first use. :raises KilnError: NotFound."""
    if key_id in (DEFAULT_ALIAS, alias_arn(caller, DEFAULT_ALIAS)):
        return default_key(catalog, caller.account_id, caller.region)
    with catalog.read() as tx:
        found = _find(tx, catalog, caller, key_id)
    if found is None:
        raise _not_found(key_id)
    return found


def _customer_key(catalog: Catalog, caller: Caller, key_id: str) -> KmsKeyRecord:
    key = find_key(catalog, caller, key_id)
    if is_aws_managed(key):
        raise KilnError(
            errors.KmsUnsupportedOperation,
            f"{key_arn(key)} is an AWS managed key; it cannot be changed.",
        )
    return key


def create_key(catalog: Catalog, caller: Caller, req: CreateKeyRequest) -> KmsKeyRecord:
    for name, value in req.options:
        if SUPPORTED.get(name, value) != value:
            raise KilnError(
                errors.KmsUnsupportedOperation,
                f"{name} {value} is not supported: Kiln keys are {SUPPORTED[name]}.",
            )
    if req.multi_region or req.custom_key_store:
        raise KilnError(
            errors.KmsUnsupportedOperation,
            "Multi-Region keys and custom key stores are not supported.",
        )
    _check_tags(req.tags)
    with catalog.write() as tx:
        key = cat.create_kms_key(
            tx,
            catalog.sealer,
            str(uuid.uuid4()),
            caller.account_id,
            caller.region,
            description=req.description,
        )
        cat_keys.put_kms_tags(tx, key.key_id, req.tags)
    return key


def describe_key(catalog: Catalog, caller: Caller, key_id: str) -> KmsKeyRecord:
    return find_key(catalog, caller, key_id)


def list_keys(
    catalog: Catalog, caller: Caller, limit: int | None, marker: str | None
) -> Page[KmsKeyRecord]:
    size = limit or 100
    with catalog.read() as tx:
        if marker is not None and _find(tx, catalog, caller, marker) is None:
            raise KilnError(errors.KmsInvalidMarker, "The marker is not valid.")
        keys = cat_keys.list_kms_keys(
            tx, catalog.sealer, caller.account_id, caller.region, marker, size + 1
        )
    more = len(keys) > size
    return Page(tuple(keys[:size]), keys[size - 1].key_id if more else None)


def change_state(
    catalog: Catalog, caller: Caller, action: str, key_id: str, window_days: int | None = None
) -> KmsKeyRecord:
    """EnableKey, DisableKey, ScheduleKeyDeletion, CancelKeyDeletion (``TRANSITIONS``)."""
    allowed, target = TRANSITIONS[action]
    key = _customer_key(catalog, caller, key_id)
    deletion_date, window = None, None
    if target == "PendingDeletion":
        window = DEFAULT_WINDOW_DAYS if window_days is None else window_days
        if not 7 <= window <= 30:
            raise KilnError(
                errors.ValidationException,
                "1 validation error detected: Value "
                f"'{window}' at 'pendingWindowInDays' failed to "
                "satisfy constraint: Member must have value "
                "between 7 and 30",
            )
        when = datetime.now(UTC) + timedelta(days=window)
        deletion_date = f"{when:%Y-%m-%dT%H:%M:%S}.000Z"
    with catalog.write() as tx:
        moved = cat_keys.set_kms_key_state(
            tx, key.key_id, target, sorted(allowed), deletion_date, window
        )
    if not moved:
        raise _invalid_state(catalog, caller, key)
    return find_key(catalog, caller, key.key_id)


def _invalid_state(catalog: Catalog, caller: Caller, key: KmsKeyRecord) -> KilnError:
    state = find_key(catalog, caller, key.key_id).state
    spelled = "pending deletion" if state == "PendingDeletion" else state.lower()
    return KilnError(errors.KmsInvalidState, f"{key_arn(key)} is {spelled}.")


def create_alias(catalog: Catalog, caller: Caller, alias_name: str, target_key_id: str) -> None:
    if alias_name.startswith("alias/aws/"):
        raise KilnError(
            errors.KmsInvalidAliasName, "Alias names that begin with alias/aws/ are reserved."
        )
    if not _ALIAS_RE.match(alias_name):
        raise KilnError(
            errors.KmsInvalidAliasName,
            f"Alias {alias_name[:256]} must begin with alias/ and hold only a-z A-Z 0-9 / _ -.",
        )
    if target_key_id.startswith("alias/") or ":alias/" in target_key_id:
        raise KilnError(errors.KmsInvalidArn, "TargetKeyId must be a key id or key ARN.")
    key = _customer_key(catalog, caller, target_key_id)
    if key.state == "PendingDeletion":
        raise _invalid_state(catalog, caller, key)
    try:
        with catalog.write() as tx:
            if cat_keys.get_alias(tx, caller.account_id, caller.region, alias_name):
                raise Conflict(alias_name)
            cat_keys.create_alias(tx, caller.account_id, caller.region, alias_name, key.key_id)
    except Conflict:
        raise KilnError(
            errors.KmsAlreadyExists,
            f"An alias with the name {alias_arn(caller, alias_name)} already exists",
        ) from None


def delete_alias(catalog: Catalog, caller: Caller, alias_name: str) -> None:
    if alias_name.startswith("alias/aws/"):
        raise KilnError(
            errors.KmsInvalidAliasName, "Alias names that begin with alias/aws/ are reserved."
        )
    with catalog.write() as tx:
        gone = cat_keys.delete_alias(tx, caller.account_id, caller.region, alias_name)
    if not gone:
        raise KilnError(
            errors.KmsNotFound, f"Alias {alias_arn(caller, alias_name[:256])} is not found."
        )


def list_aliases(
    catalog: Catalog, caller: Caller, key_id: str | None, limit: int | None, marker: str | None
) -> Page[AliasView]:
    key = find_key(catalog, caller, key_id) if key_id is not None else None
    with catalog.read() as tx:
        mine = cat_keys.list_aliases(
            tx, caller.account_id, caller.region, key.key_id if key else None
        )
        managed = cat.kms_key_by_alias(
            tx, catalog.sealer, caller.account_id, caller.region, DEFAULT_ALIAS
        )
    views = [_view(caller, a) for a in mine]
    if key is None or (managed is not None and managed.key_id == key.key_id):
        views.append(
            AliasView(
                DEFAULT_ALIAS,
                alias_arn(caller, DEFAULT_ALIAS),
                managed.key_id if managed else None,
                managed.created if managed else None,
            )
        )
    views.sort(key=lambda v: v.alias_name)
    if marker is not None:
        views = [v for v in views if v.alias_name > marker]
    size = limit or 100
    return Page(tuple(views[:size]), views[size - 1].alias_name if len(views) > size else None)


def _view(caller: Caller, alias: KmsAliasRecord) -> AliasView:
    return AliasView(
        alias.alias_name, alias_arn(caller, alias.alias_name), alias.key_id, alias.created
    )


def _check_tags(tags: tuple[tuple[str, str], ...]) -> None:
    if len(tags) > MAX_TAGS:
        raise KilnError(errors.KmsTagException, f"A key has at most {MAX_TAGS} tags.")
    for tag_key, _ in tags:
        if tag_key.lower().startswith("aws:"):
            raise KilnError(
                errors.KmsTagException,
                f"Tag keys beginning with aws: are reserved: {tag_key[:128]}",
            )


def tag_resource(
    catalog: Catalog, caller: Caller, key_id: str, tags: tuple[tuple[str, str], ...]
) -> None:
    _check_tags(tags)
    key = _customer_key(catalog, caller, key_id)
    if key.state == "PendingDeletion":
        raise _invalid_state(catalog, caller, key)
    with catalog.write() as tx:
        existing = dict(cat_keys.kms_tags(tx, key.key_id))
        if len(existing | dict(tags)) > MAX_TAGS:
            raise KilnError(errors.KmsTagException, f"A key has at most {MAX_TAGS} tags.")
        cat_keys.put_kms_tags(tx, key.key_id, tags)


def list_resource_tags(
    catalog: Catalog, caller: Caller, key_id: str, limit: int | None, marker: str | None
) -> Page[tuple[str, str]]:
    key = find_key(catalog, caller, key_id)
    with catalog.read() as tx:
        tags = cat_keys.kms_tags(tx, key.key_id)
    if marker is not None:
        tags = [t for t in tags if t[0] > marker]
    size = limit or 50
    return Page(tuple(tags[:size]), tags[size - 1][0] if len(tags) > size else None)
