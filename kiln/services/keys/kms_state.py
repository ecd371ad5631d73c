"""Whether a KMS key may be used for new encrypted data, and what EC2 says when it may not.

One rule, called where EC2 would ask KMS for a key: a key that is not ``Enabled`` (``Disabled``,
``PendingDeletion``) refuses new encrypted snapshots, volumes and copies with
``InvalidKMSKey.InvalidState``, and a launch or start of an instance whose volumes are under it
ends as on EC2 with the state reason ``Client.InvalidKMSKey.InvalidState: The KMS key provided is
in an incorrect state`` (docs/kms.md#key-states).
"""

from __future__ import annotations

from collections.abc import Iterable

from kiln import errors
from kiln.catalog import Catalog, Tx
from kiln.catalog import kms as cat
from kiln.catalog.records import KmsKeyRecord, VolumeRecord
from kiln.errors import KilnError

#: The key states whose key can protect new data (the KMS key-state table: only Enabled).
USABLE_STATES = frozenset({"Enabled"})
INVALID_STATE_MESSAGE = "The KMS key provided is in an incorrect state"
#: The state reason EC2 gives an instance that could not launch because of its key.
LAUNCH_REASON = (
    f"Client.{errors.InvalidKMSKeyInvalidState.code}",
    f"Client.{errors.InvalidKMSKeyInvalidState.code}: {INVALID_STATE_MESSAGE}",
)


def key_arn(key: KmsKeyRecord) -> str:
    return f"arn:aws:kms:{key.region}:{key.account_id}:key/{key.key_id}"


def require_usable(key: KmsKeyRecord) -> None:
    """:raises KilnError: InvalidKMSKey.InvalidState unless ``key`` is Enabled."""
    if key.state not in USABLE_STATES:
        raise KilnError(
            errors.InvalidKMSKeyInvalidState,
            f"{INVALID_STATE_MESSAGE}: {key_arn(key)} is {key.state}.",
        )


def require_usable_id(tx: Tx, catalog: Catalog, key_id: str | None) -> None:
    """``require_usable`` for a snapshot's or volume's key id or key ARN (None: unencrypted)."""
    if not key_id:
        return
    key = cat.get_kms_key(tx, catalog.sealer, key_id.rsplit("/", 1)[-1])
    if key is not None:  # a key that is gone is the decrypting code's error (DecryptionFailed)
        require_usable(key)


def require_usable_volumes(catalog: Catalog, volumes: Iterable[VolumeRecord]) -> None:
    """Every encrypted volume of an instance about to boot has a usable key."""
    with catalog.read() as tx:
        for volume in volumes:
            if volume.encrypted:
                require_usable_id(tx, catalog, volume.kms_key_id)


def boot_failure_reason(error: BaseException) -> tuple[str, str] | None:
    """The EC2 state reason of a launch that failed for its key, else None."""
    if isinstance(error, KilnError) and error.code == errors.InvalidKMSKeyInvalidState:
        return LAUNCH_REASON
    return None
