"""EBS encryption by default (docs/ebs-encryption.md): EnableEbsEncryptionByDefault,
DisableEbsEncryptionByDefault, GetEbsEncryptionByDefault, GetEbsDefaultKmsKeyId,
ModifyEbsDefaultKmsKeyId, ResetEbsDefaultKmsKeyId.

Per account and region (the ``account_settings`` row, kiln/catalog/governance.py). What the
settings do to new volumes, copies and imports is one place: ``choose_key`` and
``by_default_key`` in kiln/services/keys/kms.py.
"""

from __future__ import annotations

from kiln import errors
from kiln.catalog import governance as cat
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.keys import kms
from kiln.services.keys.kms_state import key_arn
from kiln.services.validate import dry_run


def _set(services: Services, caller: Caller, dry: bool, **values: object) -> None:
    with services.catalog.write() as tx:
        dry_run(dry)
        cat.update_settings(tx, caller.account_id, caller.region, dict(values))


def _enabled(services: Services, caller: Caller) -> bool:
    with services.catalog.read() as tx:
        return cat.get_settings(tx, caller.account_id, caller.region).ebs_encryption_by_default


def enable_ebs_encryption_by_default(services: Services, caller: Caller, dry: bool) -> bool:
    """New volumes and snapshot copies in the region are encrypted from now on."""
    _set(services, caller, dry, ebs_encryption_by_default=True)
    return _enabled(services, caller)


def disable_ebs_encryption_by_default(services: Services, caller: Caller, dry: bool) -> bool:
    """Existing encrypted volumes and snapshots stay encrypted."""
    _set(services, caller, dry, ebs_encryption_by_default=False)
    return _enabled(services, caller)


def get_ebs_encryption_by_default(services: Services, caller: Caller, dry: bool) -> bool:
    dry_run(dry)
    return _enabled(services, caller)


def _default_key_id(services: Services, caller: Caller) -> str:
    with services.catalog.read() as tx:
        chosen = cat.get_settings(tx, caller.account_id, caller.region).ebs_default_kms_key_id
    if chosen is None:
        return f"arn:aws:kms:{caller.region}:{caller.account_id}:{kms.DEFAULT_ALIAS}"
    return key_arn(kms.ebs_default_key(services.catalog, caller.account_id, caller.region))


def get_ebs_default_kms_key_id(services: Services, caller: Caller, dry: bool) -> str:
    """The ARN of the default key: ``alias/aws/ebs``'s alias ARN until a customer key is set."""
    dry_run(dry)
    return _default_key_id(services, caller)


def modify_ebs_default_kms_key_id(
    services: Services, caller: Caller, kms_key_id: str, dry: bool
) -> str:
    """Make a key of the caller's in this region (any of EC2's four KmsKeyId forms) the
    default; ``alias/aws/ebs`` is a reset."""
    if kms_key_id in (
        kms.DEFAULT_ALIAS,
        f"arn:aws:kms:{caller.region}:{caller.account_id}:{kms.DEFAULT_ALIAS}",
    ):
        return reset_ebs_default_kms_key_id(services, caller, dry)
    with services.catalog.read() as tx:
        key = kms.resolve_key(tx, services.catalog, caller.account_id, caller.region, kms_key_id)
    if key.alias == kms.DEFAULT_ALIAS:
        return reset_ebs_default_kms_key_id(services, caller, dry)
    if key.alias is not None and key.alias.startswith("alias/aws/"):
        raise KilnError(
            errors.InvalidParameterValue, f"Invalid KMS key: '{kms_key_id}' is AWS managed."
        )
    _set(services, caller, dry, ebs_default_kms_key_id=key.key_id)
    return key_arn(key)


def reset_ebs_default_kms_key_id(services: Services, caller: Caller, dry: bool) -> str:
    """Back to the AWS-managed ``alias/aws/ebs``."""
    _set(services, caller, dry, ebs_default_kms_key_id=None)
    return _default_key_id(services, caller)
