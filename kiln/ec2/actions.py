"""The supported EC2 actions: exactly the keys of ACTIONS. Each maps to its handler."""

from __future__ import annotations

from collections.abc import Mapping

from kiln.ec2 import images, tags
from kiln.ec2.server import Handler

ACTIONS: Mapping[str, Handler] = {
    # images
    "RegisterImage": images.register_image,
    "DescribeImages": images.describe_images,
    "DeregisterImage": images.deregister_image,
    "EnableImage": images.enable_image,
    "DisableImage": images.disable_image,
    "EnableImageDeprecation": images.enable_image_deprecation,
    "DisableImageDeprecation": images.disable_image_deprecation,
    "EnableImageDeregistrationProtection": images.enable_image_deregistration_protection,
    "DisableImageDeregistrationProtection": images.disable_image_deregistration_protection,
    "DescribeImageAttribute": images.describe_image_attribute,
    "ModifyImageAttribute": images.modify_image_attribute,
    "ResetImageAttribute": images.reset_image_attribute,
    # tags (every resource type)
    "CreateTags": tags.create_tags,
    "DeleteTags": tags.delete_tags,
    "DescribeTags": tags.describe_tags,
}
