"""EBS encryption by default without HTTP (kiln/services/keys/ebs_encryption.py) and the one
place it acts, ``choose_key`` (kiln/services/keys/kms.py), on both catalog dialects."""

from __future__ import annotations

import pytest
from services_fixtures import World

from kiln.errors import KilnError
from kiln.services.keys import ebs_encryption as rules
from kiln.services.keys import kms, kms_keys


def test_encryption_by_default_and_the_default_key(world: World) -> None:
    svc, me = world.svc, world.owner
    catalog = svc.catalog

    def key_of(encrypted: bool | None = None, source_encrypted: bool = False) -> str | None:
        key = kms.choose_key(
            catalog, me.account_id, me.region, encrypted, None, source_encrypted=source_encrypted
        )
        return kms.key_arn(key) if key else None

    assert key_of() is None
    assert rules.get_ebs_encryption_by_default(svc, me, False) is False
    managed = kms.key_arn(kms.default_key(catalog, me.account_id, me.region))
    assert rules.enable_ebs_encryption_by_default(svc, me, False) is True
    assert key_of() == managed and key_of(False) == managed  # EC2's table: even Encrypted=false
    # another account, and another region of the same account, are untouched
    assert kms.choose_key(catalog, world.grantee.account_id, me.region, None, None) is None
    assert kms.choose_key(catalog, me.account_id, "eu-west-1", None, None) is None

    mine = kms_keys.create_key(catalog, me, kms_keys.CreateKeyRequest())
    assert rules.modify_ebs_default_kms_key_id(svc, me, mine.key_id, False) == kms.key_arn(mine)
    assert key_of() == kms.key_arn(mine) and key_of(True) == kms.key_arn(mine)
    with pytest.raises(KilnError) as e:
        rules.modify_ebs_default_kms_key_id(svc, me, "alias/none", False)
    assert e.value.code.code == "InvalidParameterValue"
    with pytest.raises(KilnError) as e:  # DryRun answers and changes nothing
        rules.reset_ebs_default_kms_key_id(svc, me, True)
    assert e.value.code.code == "DryRunOperation"
    assert rules.get_ebs_default_kms_key_id(svc, me, False) == kms.key_arn(mine)

    alias = f"arn:aws:kms:{me.region}:{me.account_id}:alias/aws/ebs"
    assert rules.reset_ebs_default_kms_key_id(svc, me, False) == alias
    assert key_of() == managed
    assert rules.disable_ebs_encryption_by_default(svc, me, False) is False
    assert key_of() is None and key_of(True) == managed and key_of(None, True) == managed
