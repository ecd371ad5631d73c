"""Encryption keys for snapshots: EC2's KmsKeyId forms resolved to the account's catalog keys.

Each account has, per region, a default key (alias ``alias/aws/ebs``, made on first use, as AWS
makes its AWS-managed EBS key) and any keys the catalog holds for it. A key's 32-byte secret is
sealed in the catalog with the server master key; the store receives it as a
:class:`KeyEncryptionKey` whose ``key_id`` is the key's id, and wraps each store's data key with
it. KmsKeyId may be a key id, a key ARN, an alias name or an alias ARN; a key of another account
or region, or one that does not exist, is InvalidParameterValue (AWS validates KmsKeyId
asynchronously and fails the operation later; Kiln answers at once, which a client cannot
mistake for success).
"""

from __future__ import annotations

import re
import uuid

from kiln import errors
from kiln.catalog import Catalog, Conflict, Tx
from kiln.catalog import governance as cat_settings
from kiln.catalog import kms as cat
from kiln.catalog.records import KmsKeyRecord
from kiln.errors import KilnError
from kiln.services.keys.kms_state import require_usable
from kiln.store import KeyEncryptionKey

DEFAULT_ALIAS = "alias/aws/ebs"
_ARN_RE = re.compile(
    r"^arn:aws:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"(?P<kind>key|alias)/(?P<name>.+)$"
)


def key_arn(key: KmsKeyRecord) -> str:
    """What EC2 shows as a snapshot's or volume's KmsKeyId."""
    return f"arn:aws:kms:{key.region}:{key.account_id}:key/{key.key_id}"


def kek(key: KmsKeyRecord) -> KeyEncryptionKey:
    return KeyEncryptionKey(key.key_id, key.secret)


def default_key(catalog: Catalog, account_id: str, region: str) -> KmsKeyRecord:
    """The account's default EBS key in ``region``, created on first use."""
    with catalog.read() as tx:
        found = cat.kms_key_by_alias(tx, catalog.sealer, account_id, region, DEFAULT_ALIAS)
    if found is not None:
        return found
    try:
        with catalog.write() as tx:
            return cat.create_kms_key(
                tx, catalog.sealer, str(uuid.uuid4()), account_id, region, alias=DEFAULT_ALIAS
            )
    except Conflict:  # a concurrent request made it first
        with catalog.read() as tx:
            found = cat.kms_key_by_alias(tx, catalog.sealer, account_id, region, DEFAULT_ALIAS)
        assert found is not None
        return found


def resolve_key(
    tx: Tx, catalog: Catalog, account_id: str, region: str, kms_key_id: str
) -> KmsKeyRecord:
    """The caller's key named by ``kms_key_id`` in ``region`` (any of EC2's four forms)."""
    name = kms_key_id
    m = _ARN_RE.match(kms_key_id)
    if m:
        if m.group("region") != region or m.group("account") != account_id:
            raise _unknown(kms_key_id, region)
        name = m.group("name") if m.group("kind") == "key" else f"alias/{m.group('name')}"
    if name.startswith("alias/"):
        found = cat.kms_key_by_alias(tx, catalog.sealer, account_id, region, name)
    else:
        found = cat.get_kms_key(tx, catalog.sealer, name)
    if found is None or found.account_id != account_id or found.region != region:
        raise _unknown(kms_key_id, region)
    require_usable(found)  # kiln/services/keys/kms_state.py (issue 9: KMS key states)
    return found


def key_by_id(tx: Tx, catalog: Catalog, key_id: str) -> KeyEncryptionKey:
    """The store key of a snapshot's ``data_key_id`` (the server holds every account's keys)."""
    found = cat.get_kms_key(tx, catalog.sealer, key_id)
    if found is None:
        raise KilnError(errors.DecryptionFailed, f"the KMS key {key_id} no longer exists")
    require_usable(found)  # kiln/services/keys/kms_state.py (issue 9: KMS key states)
    return kek(found)


def ebs_default_key(catalog: Catalog, account_id: str, region: str) -> KmsKeyRecord:
    """The account's default key for EBS encryption in ``region``: the customer key
    ModifyEbsDefaultKmsKeyId chose (kiln/services/keys/ebs_encryption.py), else
    ``alias/aws/ebs``. What every encryption without a KmsKeyId uses."""
    with catalog.read() as tx:
        chosen = cat_settings.get_settings(tx, account_id, region).ebs_default_kms_key_id
        key = cat.get_kms_key(tx, catalog.sealer, chosen) if chosen else None
    if key is not None and key.account_id == account_id and key.region == region:
        require_usable(key)  # kiln/services/keys/kms_state.py
        return key
    return default_key(catalog, account_id, region)


def by_default_key(catalog: Catalog, account_id: str, region: str) -> KmsKeyRecord | None:
    """The key new volumes and copies get when the account enabled EBS encryption by default
    in ``region`` (EnableEbsEncryptionByDefault), else None."""
    with catalog.read() as tx:
        on = cat_settings.get_settings(tx, account_id, region).ebs_encryption_by_default
    return ebs_default_key(catalog, account_id, region) if on else None


def check_key_args(encrypted: bool | None, kms_key_id: str | None, source_encrypted: bool) -> None:
    """EC2's refusals of the encryption parameters themselves."""
    if kms_key_id is not None and not encrypted:
        raise KilnError(
            errors.InvalidParameterCombination,
            "The parameter KmsKeyId requires the parameter Encrypted to be set to true.",
        )
    if encrypted is False and source_encrypted:
        raise KilnError(
            errors.InvalidParameterCombination,
            "An encrypted snapshot cannot be copied or restored unencrypted.",
        )


def choose_key(
    catalog: Catalog,
    account_id: str,
    region: str,
    encrypted: bool | None,
    kms_key_id: str | None,
    source_encrypted: bool = False,
) -> KmsKeyRecord | None:
    """The key a new snapshot or volume is encrypted with, by EC2's rules: KmsKeyId needs
    Encrypted=true; an encrypted source stays encrypted (with the default key if none is
    named); Encrypted=true alone means the default key (``ebs_default_key``); otherwise the
    default key when encryption by default is on, else no encryption."""
    check_key_args(encrypted, kms_key_id, source_encrypted)
    if kms_key_id is not None:
        if kms_key_id in (DEFAULT_ALIAS, f"arn:aws:kms:{region}:{account_id}:{DEFAULT_ALIAS}"):
            return default_key(catalog, account_id, region)  # made on first use, like AWS
        with catalog.read() as tx:
            return resolve_key(tx, catalog, account_id, region, kms_key_id)
    if encrypted or source_encrypted:
        return ebs_default_key(catalog, account_id, region)
    return by_default_key(catalog, account_id, region)


def _unknown(kms_key_id: str, region: str) -> KilnError:
    return KilnError(
        errors.InvalidParameterValue,
        f"Invalid KMS key: '{kms_key_id}' does not name one of your keys in {region}.",
    )
