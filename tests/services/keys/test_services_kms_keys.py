"""The KMS rules without HTTP, on both catalog dialects: states, aliases, tags, and what a key's
state means for EC2 (kiln/services/keys/kms_keys.py, kms_state.py)."""

from __future__ import annotations

from typing import Any

import pytest

from kiln.catalog import Catalog
from kiln.errors import KilnError
from kiln.services.accounts.accounts import create_account
from kiln.services.context import Caller
from kiln.services.keys import kms, kms_keys, kms_state


def fails(code: str, call: Any, *args: Any) -> KilnError:
    with pytest.raises(KilnError) as e:
        call(*args)
    assert e.value.code.code == code, e.value.message
    return e.value


@pytest.fixture
def me(catalog: Catalog) -> Caller:
    return Caller(create_account(catalog, "kms-rules").account_id, "us-east-1")


def test_create_key_refuses_what_kiln_cannot_do(catalog: Catalog, me: Caller) -> None:
    for req in (
        kms_keys.CreateKeyRequest(options=(("KeySpec", "RSA_2048"),)),
        kms_keys.CreateKeyRequest(options=(("KeyUsage", "SIGN_VERIFY"),)),
        kms_keys.CreateKeyRequest(multi_region=True),
    ):
        fails("UnsupportedOperationException", kms_keys.create_key, catalog, me, req)
    fails(
        "TagException",
        kms_keys.create_key,
        catalog,
        me,
        kms_keys.CreateKeyRequest(tags=(("aws:x", "1"),)),
    )
    key = kms_keys.create_key(
        catalog,
        me,
        kms_keys.CreateKeyRequest(description="d", options=(("KeySpec", "SYMMETRIC_DEFAULT"),)),
    )
    assert (key.state, key.description) == ("Enabled", "d")


def test_state_table_and_the_ec2_refusal(catalog: Catalog, me: Caller) -> None:
    key = kms_keys.create_key(catalog, me, kms_keys.CreateKeyRequest())
    kms_state.require_usable(key)
    for action, state in (
        ("DisableKey", "Disabled"),
        ("DisableKey", "Disabled"),
        ("EnableKey", "Enabled"),
        ("ScheduleKeyDeletion", "PendingDeletion"),
    ):
        key = kms_keys.change_state(catalog, me, action, key.key_id)
        assert key.state == state
    assert key.pending_window_days == 30 and key.deletion_date
    for action in ("EnableKey", "DisableKey", "ScheduleKeyDeletion"):
        fails("KMSInvalidStateException", kms_keys.change_state, catalog, me, action, key.key_id)
    err = fails("InvalidKMSKey.InvalidState", kms_state.require_usable, key)
    assert "PendingDeletion" in err.message
    with catalog.read() as tx:  # EC2's KmsKeyId resolution refuses it too
        fails(
            "InvalidKMSKey.InvalidState",
            kms.resolve_key,
            tx,
            catalog,
            me.account_id,
            me.region,
            key.key_id,
        )
        fails("InvalidKMSKey.InvalidState", kms.key_by_id, tx, catalog, key.key_id)
    key = kms_keys.change_state(catalog, me, "CancelKeyDeletion", key.key_id)
    assert (key.state, key.deletion_date) == ("Disabled", None)
    fails(
        "KMSInvalidStateException",
        kms_keys.change_state,
        catalog,
        me,
        "CancelKeyDeletion",
        key.key_id,
    )
    fails(
        "ValidationException",
        kms_keys.change_state,
        catalog,
        me,
        "ScheduleKeyDeletion",
        key.key_id,
        31,
    )


def test_aliases_and_the_aws_managed_key(catalog: Catalog, me: Caller) -> None:
    key = kms_keys.create_key(catalog, me, kms_keys.CreateKeyRequest())
    listed = kms_keys.list_aliases(catalog, me, None, None, None).items
    assert [(a.alias_name, a.target_key_id) for a in listed] == [("alias/aws/ebs", None)]
    kms_keys.create_alias(catalog, me, "alias/b", key.key_id)
    kms_keys.create_alias(catalog, me, "alias/a", key.key_id)
    fails("AlreadyExistsException", kms_keys.create_alias, catalog, me, "alias/a", key.key_id)
    fails(
        "InvalidAliasNameException", kms_keys.create_alias, catalog, me, "alias/aws/x", key.key_id
    )
    fails("InvalidAliasNameException", kms_keys.create_alias, catalog, me, "web", key.key_id)
    fails("InvalidArnException", kms_keys.create_alias, catalog, me, "alias/c", "alias/a")
    assert kms_keys.describe_key(catalog, me, "alias/a").key_id == key.key_id
    arn = f"arn:aws:kms:us-east-1:{me.account_id}:alias/b"
    assert kms_keys.describe_key(catalog, me, arn).key_id == key.key_id
    page = kms_keys.list_aliases(catalog, me, None, 2, None)
    assert [a.alias_name for a in page.items] == ["alias/a", "alias/aws/ebs"]
    assert page.next_marker == "alias/aws/ebs"
    assert [
        a.alias_name for a in kms_keys.list_aliases(catalog, me, None, 2, page.next_marker).items
    ] == ["alias/b"]
    ebs = kms_keys.describe_key(catalog, me, "alias/aws/ebs")  # made on first use
    assert kms_keys.is_aws_managed(ebs)
    assert ebs.key_id == kms.default_key(catalog, me.account_id, me.region).key_id
    fails(
        "UnsupportedOperationException",
        kms_keys.change_state,
        catalog,
        me,
        "DisableKey",
        ebs.key_id,
    )
    kms_keys.delete_alias(catalog, me, "alias/a")
    fails("NotFoundException", kms_keys.delete_alias, catalog, me, "alias/a")
    fails("NotFoundException", kms_keys.describe_key, catalog, me, "alias/a")
    other = Caller(me.account_id, "eu-west-1")
    fails("NotFoundException", kms_keys.describe_key, catalog, other, key.key_id)


def test_list_keys_pages_and_tags(catalog: Catalog, me: Caller) -> None:
    made = sorted(
        kms_keys.create_key(catalog, me, kms_keys.CreateKeyRequest()).key_id for _ in range(3)
    )
    first = kms_keys.list_keys(catalog, me, 2, None)
    assert [k.key_id for k in first.items] == made[:2] and first.next_marker == made[1]
    rest = kms_keys.list_keys(catalog, me, 2, first.next_marker)
    assert [k.key_id for k in rest.items] == made[2:] and rest.next_marker is None
    fails("InvalidMarkerException", kms_keys.list_keys, catalog, me, 2, "nope")
    kms_keys.tag_resource(catalog, me, made[0], (("b", "2"), ("a", "1")))
    kms_keys.tag_resource(catalog, me, made[0], (("a", "one"),))
    assert kms_keys.list_resource_tags(catalog, me, made[0], None, None).items == (
        ("a", "one"),
        ("b", "2"),
    )
    fails(
        "TagException",
        kms_keys.tag_resource,
        catalog,
        me,
        made[0],
        tuple((f"k{i}", "") for i in range(49)),
    )
