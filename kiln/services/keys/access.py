"""Which key pair an id names, for the tag rules (kiln/services/tags/tags.py) and the key pair rules."""

from __future__ import annotations

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import keypairs as cat
from kiln.catalog.keypairs import KeyPairRecord
from kiln.errors import KilnError
from kiln.services.context import Caller


def owned_key_pair(tx: Tx, caller: Caller, key_pair_id: str) -> KeyPairRecord:
    """The caller's key pair with this id in its region, or InvalidKeyPair.NotFound."""
    for k in cat.list_key_pairs(tx, caller.region, caller.account_id):
        if k.key_pair_id == key_pair_id:
            return k
    raise KilnError(
        errors.InvalidKeyPairNotFound, f"The key pair ID '{key_pair_id}' does not exist"
    )
