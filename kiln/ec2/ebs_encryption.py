"""EBS encryption by default handlers: the rules in kiln/services/keys/ebs_encryption.py."""

from __future__ import annotations

from collections.abc import Mapping

from kiln.aws.context import RequestContext
from kiln.ec2.snapshots import required
from kiln.ec2.tags import Params, caller_of, flag, services_of
from kiln.services.keys import ebs_encryption as rules


def enable_ebs_encryption_by_default(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    on = rules.enable_ebs_encryption_by_default(
        services_of(ctx), caller_of(ctx), flag(params, "DryRun")
    )
    return {"EbsEncryptionByDefault": on}


def disable_ebs_encryption_by_default(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    on = rules.disable_ebs_encryption_by_default(
        services_of(ctx), caller_of(ctx), flag(params, "DryRun")
    )
    return {"EbsEncryptionByDefault": on}


def get_ebs_encryption_by_default(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    on = rules.get_ebs_encryption_by_default(
        services_of(ctx), caller_of(ctx), flag(params, "DryRun")
    )
    return {"EbsEncryptionByDefault": on}


def get_ebs_default_kms_key_id(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    key = rules.get_ebs_default_kms_key_id(services_of(ctx), caller_of(ctx), flag(params, "DryRun"))
    return {"KmsKeyId": key}


def modify_ebs_default_kms_key_id(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    key = rules.modify_ebs_default_kms_key_id(
        services_of(ctx), caller_of(ctx), required(params, "KmsKeyId"), flag(params, "DryRun")
    )
    return {"KmsKeyId": key}


def reset_ebs_default_kms_key_id(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    key = rules.reset_ebs_default_kms_key_id(
        services_of(ctx), caller_of(ctx), flag(params, "DryRun")
    )
    return {"KmsKeyId": key}
