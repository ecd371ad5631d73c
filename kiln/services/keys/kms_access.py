"""Whether an account may use a KMS key it does not own, asked where EC2 would ask KMS on the
caller's behalf (docs/kms.md#cross-account-use).

A key's owner always may. Another account may when a grant on the key for that account
(kiln/services/keys/kms_grants.py) includes ``Decrypt``: reading the chunks of a snapshot is
the only thing Kiln does with another account's key (a launch, CreateVolume and a copy decrypt
the source; what they write is under the caller's own keys or the source's unchanged). Without
one:

* a launch or start (RunInstances, StartInstances) ends as EC2 ends it, ``pending`` ->
  ``terminated`` (or back to ``stopped``) with the state reason
  ``Client.InternalError: Client error on launch``;
* CopyImage, CopySnapshot and CreateVolume fail in their job: the copy's snapshots go
  ``error`` (the image ``failed``), the volume ``error``, with the message below;
* so do CreateSnapshot and CreateImage of the grantee's volumes that are still under the
  source's key (a launched instance's volumes keep it).
"""

from __future__ import annotations

from collections.abc import Iterable

from kiln import errors
from kiln.catalog import Catalog, Tx
from kiln.catalog import kms as cat
from kiln.catalog import kms_grants as cat_grants
from kiln.catalog import snapshots as cat_snapshots
from kiln.catalog.records import VolumeRecord
from kiln.errors import KilnError
from kiln.services.keys.kms_state import key_arn

#: The grant operation a non-owner needs on the source key.
REQUIRED_OPERATION = "Decrypt"
NOT_ACCESSIBLE = "Given key ID is not accessible"
#: EC2's state reason of a launch whose volumes' key the account may not use.
LAUNCH_REASON = ("Client.InternalError", "Client.InternalError: Client error on launch")


def may_use(tx: Tx, catalog: Catalog, account_id: str, key_id: str) -> bool:
    """Whether ``account_id`` may decrypt with the key ``key_id`` (a key id or key ARN)."""
    key = cat.get_kms_key(tx, catalog.sealer, key_id.rsplit("/", 1)[-1])
    if key is None or key.account_id == account_id:
        return True  # a key that is gone is the decrypting code's error (DecryptionFailed)
    return any(
        REQUIRED_OPERATION in g.operations
        for g in cat_grants.grants_for(tx, key.key_id, account_id)
    )


def is_aws_managed_key(tx: Tx, catalog: Catalog, key_id: str | None) -> bool:
    """Whether ``key_id`` is an account's AWS-managed ``alias/aws/ebs`` key: what it encrypts
    cannot be shared (its key policy admits no other account; ModifySnapshotAttribute)."""
    if not key_id:
        return False
    key = cat.get_kms_key(tx, catalog.sealer, key_id.rsplit("/", 1)[-1])
    return key is not None and key.alias is not None and key.alias.startswith("alias/aws/")


def require_access(tx: Tx, catalog: Catalog, account_id: str, key_id: str | None) -> None:
    """:raises KilnError: KMS.AccessDeniedException unless ``account_id`` may use the key
    (None: unencrypted, nothing to check)."""
    if key_id and not may_use(tx, catalog, account_id, key_id):
        key = cat.get_kms_key(tx, catalog.sealer, key_id.rsplit("/", 1)[-1])
        arn = key_arn(key) if key is not None else key_id
        raise KilnError(
            errors.DecryptionFailed,
            f"{NOT_ACCESSIBLE}: account {account_id} has no grant for {REQUIRED_OPERATION} "
            f"on {arn}.",
        )


def require_volume_access(catalog: Catalog, volumes: Iterable[VolumeRecord]) -> None:
    """Each volume's owner may use the volume's key and the key of the snapshot it is made
    from (an instance about to boot)."""
    with catalog.read() as tx:
        for volume in volumes:
            require_access(tx, catalog, volume.owner_id, volume.kms_key_id)
            if volume.snapshot_id:
                snap = cat_snapshots.get_snapshot(tx, volume.snapshot_id, volume.owner_id)
                if snap is not None:
                    require_access(tx, catalog, volume.owner_id, snap.data_key_id)


def boot_failure_reason(error: BaseException) -> tuple[str, str] | None:
    """EC2's state reason of a launch that failed because a key could not be used."""
    if isinstance(error, KilnError) and error.code == errors.DecryptionFailed:
        return LAUNCH_REASON
    return None
