"""Key pair rules: CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPair.

Kiln keeps only the public key (and never logs private material). The private key of a created
pair is returned once, as EC2 does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kiln import errors
from kiln.catalog import Conflict, Tx
from kiln.catalog import keypairs as cat
from kiln.catalog.keypairs import KeyPairRecord
from kiln.catalog.records import Filter, utc_now
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.keys import ssh_keys
from kiln.services.row_filters import check_names, matches
from kiln.services.tags.tags import TagSpec, apply_tag_specs, check_tag_specs
from kiln.services.validate import dry_run, id_prefix
from kiln.types import new_id

log = logging.getLogger(__name__)

MAX_NAME = 255
FILTERS: dict[str, Callable[[KeyPairRecord], list[str | None]]] = {
    "key-pair-id": lambda k: [k.key_pair_id],
    "key-name": lambda k: [k.key_name],
    "fingerprint": lambda k: [k.key_fingerprint],
    "key-type": lambda k: [k.key_type],
}


@dataclass(frozen=True, slots=True)
class CreateKeyPairResult:
    key_pair: KeyPairRecord
    key_material: str


def check_key_name(name: str | None) -> str:
    if not name:
        raise KilnError(errors.MissingParameter, "The request must contain the parameter KeyName")
    if len(name) > MAX_NAME or not name.isascii() or not name.isprintable():
        raise KilnError(
            errors.InvalidParameterValue,
            f"Value ({name[:300]}) for parameter keyName is invalid. Key names must "
            f"be 1 to {MAX_NAME} printable ASCII characters.",
        )
    return name


def check_key_pair_id(value: str) -> str:
    if id_prefix(value) != "key":
        raise KilnError(
            errors.InvalidKeyPairNotFound,
            f"The key pair ID '{value}' is malformed (expecting \"key-...\")",
        )
    return value


def _insert(
    services: Services,
    caller: Caller,
    name: str,
    key_type: str,
    public_key: str,
    fingerprint: str,
    tag_specs: tuple[TagSpec, ...],
    dry_run_flag: bool,
) -> KeyPairRecord:
    check_tag_specs(tag_specs, ("key-pair",))
    record = KeyPairRecord(
        new_id("key"),
        caller.region,
        caller.account_id,
        name,
        key_type,
        fingerprint,
        public_key,
        utc_now(),
    )
    duplicate = KilnError(errors.InvalidKeyPairDuplicate, f"The keypair '{name}' already exists.")
    try:
        with services.catalog.write() as tx:
            if cat.key_pair_named(tx, caller.region, caller.account_id, name) is not None:
                raise duplicate
            dry_run(dry_run_flag)
            cat.insert_key_pair(tx, record)
            apply_tag_specs(tx, caller, tag_specs, {"key-pair": [record.key_pair_id]})
            found = [
                k
                for k in cat.list_key_pairs(tx, caller.region, caller.account_id)
                if k.key_pair_id == record.key_pair_id
            ]
    except Conflict:
        raise duplicate from None
    log.info("key pair %s (%s, %s) for %s", record.key_pair_id, name, key_type, caller.account_id)
    return found[0]


def create_key_pair(
    services: Services,
    caller: Caller,
    name: str | None,
    key_type: str | None,
    key_format: str | None,
    tag_specs: tuple[TagSpec, ...],
    dry_run_flag: bool,
) -> CreateKeyPairResult:
    name = check_key_name(name)
    if key_format not in (None, "pem"):
        raise KilnError(
            errors.InvalidParameterValue,
            f"Value ({key_format}) for parameter keyFormat is invalid. Kiln returns "
            "private keys as pem only.",
        )
    key = ssh_keys.generate_key(key_type or "rsa")
    record = _insert(
        services,
        caller,
        name,
        key.key_type,
        key.public_key,
        key.fingerprint,
        tag_specs,
        dry_run_flag,
    )
    return CreateKeyPairResult(record, key.private_key)


def import_key_pair(
    services: Services,
    caller: Caller,
    name: str | None,
    material: bytes | None,
    tag_specs: tuple[TagSpec, ...],
    dry_run_flag: bool,
) -> KeyPairRecord:
    name = check_key_name(name)
    if not material:
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter PublicKeyMaterial"
        )
    parsed = ssh_keys.parse_public_key(material)
    return _insert(
        services,
        caller,
        name,
        parsed.key_type,
        parsed.public_key,
        parsed.fingerprint,
        tag_specs,
        dry_run_flag,
    )


def describe_key_pairs(
    services: Services,
    caller: Caller,
    key_names: Sequence[str],
    key_pair_ids: Sequence[str],
    filters: Sequence[Filter],
    dry_run_flag: bool,
) -> list[KeyPairRecord]:
    check_names(filters, FILTERS)
    for kid in key_pair_ids:
        check_key_pair_id(kid)
    dry_run(dry_run_flag)
    with services.catalog.read() as tx:
        keys = cat.list_key_pairs(tx, caller.region, caller.account_id)
    by_name = {k.key_name for k in keys}
    missing = [n for n in key_names if n not in by_name]
    if missing:
        raise KilnError(
            errors.InvalidKeyPairNotFound, f"The key pair '{missing[0]}' does not exist"
        )
    by_id = {k.key_pair_id for k in keys}
    missing = [i for i in key_pair_ids if i not in by_id]
    if missing:
        raise KilnError(
            errors.InvalidKeyPairNotFound, f"The key pair ID '{missing[0]}' does not exist"
        )
    return [
        k
        for k in keys
        if (not key_names or k.key_name in key_names)
        and (not key_pair_ids or k.key_pair_id in key_pair_ids)
        and matches(k, k.tags, filters, FILTERS)
    ]


def key_pair_for_launch(tx: Tx, caller: Caller, name: str) -> KeyPairRecord:
    """The caller's key pair ``name`` in its region, or InvalidKeyPair.NotFound."""
    found = cat.key_pair_named(tx, caller.region, caller.account_id, name)
    if found is None:
        raise KilnError(errors.InvalidKeyPairNotFound, f"The key pair '{name}' does not exist")
    return found


def delete_key_pair(
    services: Services,
    caller: Caller,
    name: str | None,
    key_pair_id: str | None,
    dry_run_flag: bool,
) -> str | None:
    """Delete by name or id; the deleted pair's id (None if no pair had that name: EC2
    answers success for an unknown name, but NotFound for an unknown id)."""
    if not name and not key_pair_id:
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter KeyName or KeyPairId"
        )
    if key_pair_id:
        check_key_pair_id(key_pair_id)
    with services.catalog.write() as tx:
        keys = cat.list_key_pairs(tx, caller.region, caller.account_id)
        found = [
            k
            for k in keys
            if (key_pair_id and k.key_pair_id == key_pair_id)
            or (not key_pair_id and k.key_name == name)
        ]
        if key_pair_id and not found:
            raise KilnError(
                errors.InvalidKeyPairNotFound, f"The key pair ID '{key_pair_id}' does not exist"
            )
        dry_run(dry_run_flag)
        cat.delete_key_pairs(tx, [k.key_pair_id for k in found])
    if found:
        log.info("deleted key pair %s (%s)", found[0].key_pair_id, found[0].key_name)
    return found[0].key_pair_id if found else None
