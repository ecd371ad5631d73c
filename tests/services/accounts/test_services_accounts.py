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


def test_an_operator_may_choose_short_test_keys_and_generated_ones_keep_aws_shape(
    catalog: Catalog,
) -> None:
    import re

    import pytest

    from kiln import errors
    from kiln.errors import KilnError

    for key, secret in (("test", "test"), ("FOOBARKEY", "FOOBARSECRET"), ("k", "s/+=~")):
        made = create_account(catalog, f"suite-{key}", None, key, secret)
        found = lookup_access_key(catalog, key)
        assert found is not None and found.secret_access_key == secret
        assert found.account_id == made.account_id
    for key, secret in (("a/b", "x"), ("a,b", "x"), ("", "x"), ("k" * 129, "x"), ("ok", "")):
        with pytest.raises(KilnError) as e:
            create_account(catalog, "bad", None, key, secret)
        assert e.value.code == errors.InvalidParameterValue, key
    with pytest.raises(KilnError):  # the same id twice
        create_account(catalog, "again", None, "test", "other")
    made = create_account(catalog, "generated")
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", made.access_key_id)
    assert len(made.secret_access_key) == 40
