"""CopyImage handler."""

from __future__ import annotations

from collections.abc import Mapping

from kiln.aws.context import RequestContext
from kiln.ec2.snapshots import required
from kiln.ec2.tags import Params, caller_of, flag, opt_bool, opt_str, services_of, tag_specs
from kiln.services.images import copy_image as rules


def copy_image(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    image_id = rules.copy_image(
        services_of(ctx),
        caller_of(ctx),
        rules.CopyImageRequest(
            source_image_id=required(params, "SourceImageId"),
            source_region=required(params, "SourceRegion"),
            name=required(params, "Name"),
            description=opt_str(params, "Description"),
            encrypted=opt_bool(params, "Encrypted"),
            kms_key_id=opt_str(params, "KmsKeyId") or None,
            copy_image_tags=flag(params, "CopyImageTags"),
            tag_specs=tag_specs(params),
            dry_run=flag(params, "DryRun"),
        ),
    )
    return {"ImageId": image_id}
