"""KMS grants without HTTP, on both catalog dialects (kiln/services/keys/kms_grants.py) and what
a grant lets another account do (kiln/services/keys/kms_access.py)."""

from __future__ import annotations

from typing import Any

import pytest

from kiln.catalog import Catalog
from kiln.errors import KilnError
from kiln.services.accounts.accounts import create_account
from kiln.services.context import Caller
from kiln.services.keys import kms_access, kms_grants, kms_keys
from kiln.services.keys.kms_grants import CreateGrantRequest, ListGrantsRequest, RetireGrantRequest


def fails(code: str, call: Any, *args: Any) -> KilnError:
    with pytest.raises(KilnError) as e:
        call(*args)
    assert e.value.code.code == code, e.value.message
    return e.value


@pytest.fixture
def two(catalog: Catalog) -> tuple[Caller, Caller]:
    return (
        Caller(create_account(catalog, "grant-owner").account_id, "us-east-1"),
        Caller(create_account(catalog, "grant-grantee").account_id, "us-east-1"),
    )


def test_a_grant_lets_the_grantee_decrypt_until_it_is_revoked(
    catalog: Catalog, two: tuple[Caller, Caller]
) -> None:
    owner, grantee = two
    key = kms_keys.create_key(catalog, owner, kms_keys.CreateKeyRequest())
    with catalog.read() as tx:
        assert kms_access.may_use(tx, catalog, owner.account_id, key.key_id)
        assert not kms_access.may_use(tx, catalog, grantee.account_id, key.key_id)
    made = kms_grants.create_grant(
        catalog,
        owner,
        CreateGrantRequest(
            key.key_id, f"arn:aws:iam::{grantee.account_id}:root", ("Decrypt", "DescribeKey")
        ),
    )
    assert len(made.grant_id) == 64 and made.grant_token
    with catalog.read() as tx:
        assert kms_access.may_use(tx, catalog, grantee.account_id, key.key_id)
    kms_grants.revoke_grant(catalog, owner, key.key_id, made.grant_id)
    with catalog.read() as tx:
        assert not kms_access.may_use(tx, catalog, grantee.account_id, key.key_id)
        fails(
            "KMS.AccessDeniedException",
            kms_access.require_access,
            tx,
            catalog,
            grantee.account_id,
            key.key_id,
        )
    fails("NotFoundException", kms_grants.revoke_grant, catalog, owner, key.key_id, made.grant_id)


def test_a_grant_without_decrypt_is_not_enough(
    catalog: Catalog, two: tuple[Caller, Caller]
) -> None:
    owner, grantee = two
    key = kms_keys.create_key(catalog, owner, kms_keys.CreateKeyRequest())
    kms_grants.create_grant(
        catalog, owner, CreateGrantRequest(key.key_id, grantee.account_id, ("Encrypt",))
    )
    with catalog.read() as tx:
        assert not kms_access.may_use(tx, catalog, grantee.account_id, key.key_id)


def test_list_grants_pages_and_filters(catalog: Catalog, two: tuple[Caller, Caller]) -> None:
    owner, grantee = two
    key = kms_keys.create_key(catalog, owner, kms_keys.CreateKeyRequest())
    ids = [
        kms_grants.create_grant(
            catalog,
            owner,
            CreateGrantRequest(key.key_id, grantee.account_id, ("Decrypt",), name=f"g{n}"),
        ).grant_id
        for n in range(3)
    ]
    seen, marker = [], None
    while True:
        _, page = kms_grants.list_grants(
            catalog, owner, ListGrantsRequest(key.key_id, limit=2, marker=marker)
        )
        seen += [g.grant_id for g in page.items]
        marker = page.next_marker
        if marker is None:
            break
    assert sorted(seen) == sorted(ids)
    _, one = kms_grants.list_grants(catalog, owner, ListGrantsRequest(key.key_id, grant_id=ids[1]))
    assert [g.grant_id for g in one.items] == [ids[1]]
    fails(
        "InvalidMarkerException",
        kms_grants.list_grants,
        catalog,
        owner,
        ListGrantsRequest(key.key_id, marker="nope"),
    )
    # the same Name and grant again is the same grant (KMS's idempotence)
    again = kms_grants.create_grant(
        catalog, owner, CreateGrantRequest(key.key_id, grantee.account_id, ("Decrypt",), name="g0")
    )
    assert again.grant_id == ids[0]


def test_refusals(catalog: Catalog, two: tuple[Caller, Caller]) -> None:
    owner, grantee = two
    key = kms_keys.create_key(catalog, owner, kms_keys.CreateKeyRequest())
    ok = (grantee.account_id, ("Decrypt",))
    cases = [
        ("NotFoundException", CreateGrantRequest("no-such-key", *ok)),
        ("ValidationException", CreateGrantRequest(key.key_id, "not a principal", ("Decrypt",))),
        ("ValidationException", CreateGrantRequest(key.key_id, "999999999999", ("Decrypt",))),
        ("ValidationException", CreateGrantRequest(key.key_id, grantee.account_id, ())),
        ("ValidationException", CreateGrantRequest(key.key_id, grantee.account_id, ("Sign",))),
        (
            "UnsupportedOperationException",
            CreateGrantRequest(key.key_id, *ok, constraints=True),
        ),
        ("AccessDeniedException", CreateGrantRequest("alias/aws/ebs", *ok)),
        ("DryRunOperationException", CreateGrantRequest(key.key_id, *ok, dry_run=True)),
    ]
    for code, req in cases:
        fails(code, kms_grants.create_grant, catalog, owner, req)
    # another account's key is not found, as KMS says without a key policy allowing it
    fails(
        "NotFoundException",
        kms_grants.create_grant,
        catalog,
        grantee,
        CreateGrantRequest(
            f"arn:aws:kms:us-east-1:{owner.account_id}:key/{key.key_id}", owner.account_id, ok[1]
        ),
    )
    fails("InvalidGrantIdException", kms_grants.revoke_grant, catalog, owner, key.key_id, "x")
    _, page = kms_grants.list_grants(catalog, owner, ListGrantsRequest(key.key_id))
    assert page.items == ()  # nothing refused was made


def test_retire_grant_by_token_or_by_the_grantee(
    catalog: Catalog, two: tuple[Caller, Caller]
) -> None:
    owner, grantee = two
    key = kms_keys.create_key(catalog, owner, kms_keys.CreateKeyRequest())
    arn = f"arn:aws:kms:us-east-1:{owner.account_id}:key/{key.key_id}"
    plain = kms_grants.create_grant(
        catalog, owner, CreateGrantRequest(key.key_id, grantee.account_id, ("Decrypt",))
    )
    fails(
        "AccessDeniedException",
        kms_grants.retire_grant,
        catalog,
        grantee,
        RetireGrantRequest(key_id=arn, grant_id=plain.grant_id),
    )
    kms_grants.retire_grant(catalog, owner, RetireGrantRequest(grant_token=plain.grant_token))
    retirable = kms_grants.create_grant(
        catalog,
        owner,
        CreateGrantRequest(key.key_id, grantee.account_id, ("Decrypt", "RetireGrant")),
    )
    kms_grants.retire_grant(
        catalog, grantee, RetireGrantRequest(key_id=arn, grant_id=retirable.grant_id)
    )
    fails(
        "InvalidGrantTokenException",
        kms_grants.retire_grant,
        catalog,
        grantee,
        RetireGrantRequest(grant_token="bm90LWEtdG9rZW4"),
    )
    _, page = kms_grants.list_grants(catalog, owner, ListGrantsRequest(key.key_id))
    assert page.items == ()
