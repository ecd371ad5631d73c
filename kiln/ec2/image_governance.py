"""Handlers of the account-level image controls: block public access for AMIs and Allowed AMIs
(docs/governance.md). Rules: kiln/services/images/block_public_access.py, allowed_images.py."""

from __future__ import annotations

from collections.abc import Mapping

from kiln.aws.context import RequestContext
from kiln.ec2.tags import Params, caller_of, dicts, flag, opt_str, services_of
from kiln.services.images import allowed_images as allowed
from kiln.services.images import block_public_access as bpa


def enable_image_block_public_access(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    state = bpa.enable_image_block_public_access(
        services_of(ctx),
        caller_of(ctx),
        opt_str(params, "ImageBlockPublicAccessState") or "",
        flag(params, "DryRun"),
    )
    return {"ImageBlockPublicAccessState": state}


def disable_image_block_public_access(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    state = bpa.disable_image_block_public_access(
        services_of(ctx), caller_of(ctx), flag(params, "DryRun")
    )
    return {"ImageBlockPublicAccessState": state}


def get_image_block_public_access_state(
    ctx: RequestContext, params: Params
) -> Mapping[str, object]:
    state = bpa.get_image_block_public_access_state(
        services_of(ctx), caller_of(ctx), flag(params, "DryRun")
    )
    return {"ImageBlockPublicAccessState": state, "ManagedBy": "account"}


def enable_allowed_images_settings(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    state = allowed.enable_allowed_images_settings(
        services_of(ctx),
        caller_of(ctx),
        opt_str(params, "AllowedImagesSettingsState") or "",
        flag(params, "DryRun"),
    )
    return {"AllowedImagesSettingsState": state}


def disable_allowed_images_settings(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    state = allowed.disable_allowed_images_settings(
        services_of(ctx), caller_of(ctx), flag(params, "DryRun")
    )
    return {"AllowedImagesSettingsState": state}


def get_allowed_images_settings(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    settings = allowed.get_allowed_images_settings(
        services_of(ctx), caller_of(ctx), flag(params, "DryRun")
    )
    return {
        "State": settings.state,
        "ImageCriteria": [c.as_json() for c in settings.criteria] or None,
        "ManagedBy": "account",
    }


def replace_image_criteria_in_allowed_images_settings(
    ctx: RequestContext, params: Params
) -> Mapping[str, object]:
    allowed.replace_image_criteria_in_allowed_images_settings(
        services_of(ctx),
        caller_of(ctx),
        [dict(c) for c in dicts(params.get("ImageCriteria"))],
        flag(params, "DryRun"),
    )
    return {"ReturnValue": True}
