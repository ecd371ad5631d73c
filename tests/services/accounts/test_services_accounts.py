"""Account rules without HTTP: a new account's access key is found again, sealed at rest."""

from __future__ import annotations

from kiln.catalog import Catalog
from kiln.services.accounts.accounts import create_account, lookup_access_key


def test_create_account_and_look_up_its_key(catalog: Catalog) -> None:
    made = create_account(catalog, "alice")
    found = lookup_access_key(catalog, made.access_key_id)
    assert found is not None
    assert (found.account_id, found.secret_access_key) == (made.account_id, made.secret_access_key)
    assert lookup_access_key(catalog, "AKIANOSUCHKEY0000000") is None
