"""The supported EC2 actions: exactly the keys of ACTIONS. Each maps to its handler."""

from __future__ import annotations

from collections.abc import Mapping

from kiln.aws.context import Handler
from kiln.ec2 import (
    copy_image,
    ebs_encryption,
    image_governance,
    images,
    instance_types,
    instances,
    keypairs,
    lineage,
    networks,
    regions,
    scans,
    snapshots,
    tags,
    tasks,
    volumes,
)

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
    # account-level image controls (docs/governance.md)
    "EnableImageBlockPublicAccess": image_governance.enable_image_block_public_access,
    "DisableImageBlockPublicAccess": image_governance.disable_image_block_public_access,
    "GetImageBlockPublicAccessState": image_governance.get_image_block_public_access_state,
    "EnableAllowedImagesSettings": image_governance.enable_allowed_images_settings,
    "DisableAllowedImagesSettings": image_governance.disable_allowed_images_settings,
    "GetAllowedImagesSettings": image_governance.get_allowed_images_settings,
    "ReplaceImageCriteriaInAllowedImagesSettings": (
        image_governance.replace_image_criteria_in_allowed_images_settings
    ),
    "DisableImageDeregistrationProtection": images.disable_image_deregistration_protection,
    "DescribeImageAttribute": images.describe_image_attribute,
    "ModifyImageAttribute": images.modify_image_attribute,
    "ResetImageAttribute": images.reset_image_attribute,
    "CancelImageLaunchPermission": images.cancel_image_launch_permission,
    # Recycle Bin, lineage, references, usage reports (kiln/ec2/lineage.py)
    "ListImagesInRecycleBin": lineage.list_images_in_recycle_bin,
    "RestoreImageFromRecycleBin": lineage.restore_image_from_recycle_bin,
    "GetImageAncestry": lineage.get_image_ancestry,
    "DescribeImageReferences": lineage.describe_image_references,
    "CreateImageUsageReport": lineage.create_image_usage_report,
    "DescribeImageUsageReports": lineage.describe_image_usage_reports,
    "DescribeImageUsageReportEntries": lineage.describe_image_usage_report_entries,
    "DeleteImageUsageReport": lineage.delete_image_usage_report,
    # offline compliance scans (docs/scan.md)
    "GetImageFindings": scans.get_image_findings,
    # tags (every resource type)
    "CreateTags": tags.create_tags,
    "DeleteTags": tags.delete_tags,
    "DescribeTags": tags.describe_tags,
    # snapshots, volumes, copies, import / export tasks (kiln/ec2/{snapshots,volumes,tasks}.py)
    "CopyImage": copy_image.copy_image,
    "DescribeSnapshots": snapshots.describe_snapshots,
    "CreateSnapshot": snapshots.create_snapshot,
    "CopySnapshot": snapshots.copy_snapshot,
    "DeleteSnapshot": snapshots.delete_snapshot,
    "DescribeSnapshotAttribute": snapshots.describe_snapshot_attribute,
    "ModifySnapshotAttribute": snapshots.modify_snapshot_attribute,
    "ResetSnapshotAttribute": snapshots.reset_snapshot_attribute,
    "CreateVolume": volumes.create_volume,
    "DescribeVolumes": volumes.describe_volumes,
    "DeleteVolume": volumes.delete_volume,
    # EBS encryption by default (docs/ebs-encryption.md)
    "EnableEbsEncryptionByDefault": ebs_encryption.enable_ebs_encryption_by_default,
    "DisableEbsEncryptionByDefault": ebs_encryption.disable_ebs_encryption_by_default,
    "GetEbsEncryptionByDefault": ebs_encryption.get_ebs_encryption_by_default,
    "GetEbsDefaultKmsKeyId": ebs_encryption.get_ebs_default_kms_key_id,
    "ModifyEbsDefaultKmsKeyId": ebs_encryption.modify_ebs_default_kms_key_id,
    "ResetEbsDefaultKmsKeyId": ebs_encryption.reset_ebs_default_kms_key_id,
    "ImportSnapshot": tasks.import_snapshot,
    "DescribeImportSnapshotTasks": tasks.describe_import_snapshot_tasks,
    "ImportImage": tasks.import_image,
    "DescribeImportImageTasks": tasks.describe_import_image_tasks,
    "ExportImage": tasks.export_image,
    "DescribeExportImageTasks": tasks.describe_export_image_tasks,
    "CancelImportTask": tasks.cancel_import_task,
    # key pairs (kiln/ec2/keypairs.py)
    "CreateKeyPair": keypairs.create_key_pair,
    "ImportKeyPair": keypairs.import_key_pair,
    "DescribeKeyPairs": keypairs.describe_key_pairs,
    "DeleteKeyPair": keypairs.delete_key_pair,
    # instances (kiln/ec2/instances.py)
    "RunInstances": instances.run_instances,
    "ModifyInstanceMetadataOptions": instances.modify_instance_metadata_options,
    # VPCs, subnets, security groups (kiln/ec2/networks.py)
    "CreateVpc": networks.create_vpc,
    "DeleteVpc": networks.delete_vpc,
    "DescribeVpcs": networks.describe_vpcs,
    "CreateSubnet": networks.create_subnet,
    "DeleteSubnet": networks.delete_subnet,
    "DescribeSubnets": networks.describe_subnets,
    "CreateSecurityGroup": networks.create_security_group,
    "DeleteSecurityGroup": networks.delete_security_group,
    "DescribeSecurityGroups": networks.describe_security_groups,
    "AuthorizeSecurityGroupIngress": networks.authorize_security_group_ingress,
    "AuthorizeSecurityGroupEgress": networks.authorize_security_group_egress,
    "RevokeSecurityGroupIngress": networks.revoke_security_group_ingress,
    "RevokeSecurityGroupEgress": networks.revoke_security_group_egress,
    "DescribeSecurityGroupRules": networks.describe_security_group_rules,
    "DescribeInstances": instances.describe_instances,
    "DescribeInstanceStatus": instances.describe_instance_status,
    "StartInstances": instances.start_instances,
    "StopInstances": instances.stop_instances,
    "RebootInstances": instances.reboot_instances,
    "TerminateInstances": instances.terminate_instances,
    "GetConsoleOutput": instances.get_console_output,
    "DescribeInstanceAttribute": instances.describe_instance_attribute,
    "ModifyInstanceAttribute": instances.modify_instance_attribute,
    "CreateImage": instances.create_image,
    # instance types (kiln/ec2/instance_types.py)
    "DescribeInstanceTypes": instance_types.describe_instance_types,
    "DescribeInstanceTypeOfferings": instance_types.describe_instance_type_offerings,
    # regions, zones, account attributes (kiln/ec2/regions.py)
    "DescribeRegions": regions.describe_regions,
    "DescribeAvailabilityZones": regions.describe_availability_zones,
    "DescribeAccountAttributes": regions.describe_account_attributes,
}
