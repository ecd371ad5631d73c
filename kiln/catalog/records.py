"""What the catalog hands out and takes in: frozen dataclasses, no SQLAlchemy.

Services import these; only the catalog's own modules see the ORM models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SYSTEM_ACCOUNT_ID = "000000000000"
SYSTEM_ACCOUNT_ALIAS = "kiln"
#: The owner alias of a verified provider's images, as EC2 shows verified partners' AMIs
#: (docs/community.md).
VERIFIED_PROVIDER_ALIAS = "aws-marketplace"


def ec2_time(moment: datetime) -> str:
    """EC2's timestamp text: ``2026-11-23T19:08:02.000Z`` (UTC, milliseconds)."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def utc_now() -> str:
    return ec2_time(datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class AccountRecord:
    account_id: str
    name: str
    alias: str | None
    created: str
    verified: bool = False

    @property
    def owner_alias(self) -> str | None:
        """What its images and snapshots show as ImageOwnerAlias / OwnerAlias."""
        return VERIFIED_PROVIDER_ALIAS if self.verified else self.alias


@dataclass(frozen=True, slots=True)
class AccessKeyRecord:
    access_key_id: str
    secret_access_key: str
    account_id: str


@dataclass(frozen=True, slots=True)
class TagRecord:
    resource_id: str
    resource_type: str
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class EbsRecord:
    snapshot_id: str | None = None
    volume_size: int | None = None
    volume_type: str | None = None
    iops: int | None = None
    throughput: int | None = None
    delete_on_termination: bool | None = None
    encrypted: bool | None = None
    kms_key_id: str | None = None
    outpost_arn: str | None = None
    availability_zone: str | None = None
    volume_initialization_rate: int | None = None
    ebs_card_index: int | None = None


@dataclass(frozen=True, slots=True)
class BlockDeviceRecord:
    device_name: str
    virtual_name: str | None = None
    no_device: bool = False
    ebs: EbsRecord | None = None


@dataclass(frozen=True, slots=True)
class ProductCodeRecord:
    product_code_id: str
    product_code_type: str = "marketplace"


@dataclass(frozen=True, slots=True)
class LaunchPermissionRecord:
    """Exactly one field is set."""

    user_id: str | None = None
    group: str | None = None
    organization_arn: str | None = None
    organizational_unit_arn: str | None = None


@dataclass(frozen=True, slots=True)
class ImageRecord:
    image_id: str
    region: str
    owner_id: str
    name: str
    state: str
    architecture: str
    root_device_type: str
    virtualization_type: str
    image_type: str
    creation_date: str
    platform_details: str = "Linux/UNIX"
    usage_operation: str = "RunInstances"
    hypervisor: str = "xen"
    description: str | None = None
    state_reason_code: str | None = None
    state_reason_message: str | None = None
    platform: str | None = None
    root_device_name: str | None = None
    boot_mode: str | None = None
    ena_support: bool | None = None
    sriov_net_support: str | None = None
    imds_support: str | None = None
    tpm_support: str | None = None
    uefi_data: str | None = None
    kernel_id: str | None = None
    ramdisk_id: str | None = None
    image_location: str | None = None
    is_public: bool = False
    deprecation_time: str | None = None
    deregistration_protection: str = "disabled"
    deregistered_at: str | None = None
    last_launched_time: str | None = None
    source_image_id: str | None = None
    source_image_region: str | None = None
    source_instance_id: str | None = None
    bundle: dict[str, Any] | None = None
    owner_alias: str | None = None
    block_devices: tuple[BlockDeviceRecord, ...] = ()
    product_codes: tuple[ProductCodeRecord, ...] = ()
    tags: tuple[TagRecord, ...] = ()
    # DescribeImages' ImageAllowed for the caller (Allowed AMIs; None when the setting is off)
    image_allowed: bool | None = None


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    snapshot_id: str
    region: str
    owner_id: str
    volume_size: int
    state: str
    start_time: str
    volume_id: str | None = None
    full_size_bytes: int | None = None
    state_message: str | None = None
    progress: str = "0%"
    encrypted: bool = False
    kms_key_id: str | None = None
    data_key_id: str | None = None
    description: str | None = None
    completion_time: str | None = None
    parent_snapshot_id: str | None = None
    storage_tier: str = "standard"
    is_public: bool = False
    owner_alias: str | None = None
    tags: tuple[TagRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class VolumeRecord:
    volume_id: str
    region: str
    owner_id: str
    size: int
    availability_zone: str
    state: str
    create_time: str
    snapshot_id: str | None = None
    volume_type: str = "gp3"
    iops: int | None = None
    throughput: int | None = None
    encrypted: bool = False
    kms_key_id: str | None = None
    multi_attach_enabled: bool = False
    instance_id: str | None = None
    device: str | None = None
    attach_time: str | None = None
    delete_on_termination: bool | None = None
    tags: tuple[TagRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class JobRecord:
    job_id: str
    kind: str
    region: str
    account_id: str
    state: str
    progress: int
    params: dict[str, Any]
    created: str
    updated: str
    status_message: str | None = None
    result: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class KmsKeyRecord:
    key_id: str
    account_id: str
    region: str
    alias: str | None
    secret: bytes = field(repr=False)
    state: str = "Enabled"
    created: str = ""
    description: str = ""
    deletion_date: str | None = None  # PendingDeletion only
    pending_window_days: int | None = None  # PendingDeletion only


@dataclass(frozen=True, slots=True)
class KmsAliasRecord:
    """A caller-made KMS alias (``alias/…``) and the key it names."""

    alias_name: str
    account_id: str
    region: str
    key_id: str
    created: str


@dataclass(frozen=True, slots=True)
class Filter:
    """One EC2 filter: ``Name`` and its ``Values`` (OR'ed); filters are AND'ed."""

    name: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ImageAliasRecord:
    """An operator's alias: ``alias`` (an image id) stands for ``target`` in ``region``."""

    region: str
    alias: str
    target: str
    created: str


@dataclass(frozen=True, slots=True)
class PublicParameterRecord:
    name: str
    family: str
    created: str


@dataclass(frozen=True, slots=True)
class ParameterRecord:
    """One version of an SSM parameter; ``value`` is the plain text (a SecureString's is
    unsealed by the catalog), ``sealed`` the SecureString's sealed bytes (else None)."""

    account_id: str
    region: str
    name: str
    version: int
    type: str
    value: str
    sealed: bytes | None
    description: str | None
    key_id: str | None
    allowed_pattern: str | None
    tier: str
    data_type: str
    modified: str
    modified_user: str


@dataclass(frozen=True, slots=True)
class LifecyclePolicyRecord:
    """A stored lifecycle policy (kiln/services/lifecycle/; docs/lifecycle.md)."""

    account_id: str
    region: str
    name: str
    arn: str
    status: str
    document: dict[str, Any]
    selection: dict[str, Any]
    created: str
    updated: str
    last_run_at: str | None = None
    run_started_at: str | None = None
    last_run: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RetentionRuleRecord:
    """A Recycle Bin retention rule (docs/recycle-bin.md). Tags are ``(key, value)`` pairs;
    a resource tag's value None matches any value of its key."""

    rule_id: str
    region: str
    owner_id: str
    resource_type: str
    retention_days: int
    created: str
    description: str | None = None
    resource_tags: tuple[tuple[str, str | None], ...] = ()
    exclude_tags: tuple[tuple[str, str | None], ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    unlock_delay_days: int | None = None
    lock_state: str | None = None  # None, "locked" or "unlocked" (pending until lock_end_time)
    lock_end_time: str | None = None


@dataclass(frozen=True, slots=True)
class BinnedImageRecord:
    """A deregistered image the Recycle Bin keeps until ``exit_time``."""

    image_id: str
    region: str
    owner_id: str
    enter_time: str
    exit_time: str
    delete_snapshots: bool
    prior_state: str


@dataclass(frozen=True, slots=True)
class UsageEntryRecord:
    resource_type: str
    account_id: str
    usage_count: int


@dataclass(frozen=True, slots=True)
class ImageUsageReportRecord:
    report_id: str
    region: str
    owner_id: str
    image_id: str
    creation_time: str
    expiration_time: str
    resource_types: tuple[str, ...] = ()
    account_ids: tuple[str, ...] = ()
    entries: tuple[UsageEntryRecord, ...] = ()
    client_token: str | None = None


@dataclass(frozen=True, slots=True)
class KmsGrantRecord:
    """A KMS grant (kiln/catalog/kms_grants.py): who besides the key's owner may use it."""

    grant_id: str
    key_id: str
    grantee_principal: str
    grantee_account: str
    retiring_principal: str | None
    operations: tuple[str, ...]
    name: str | None
    issuing_account: str
    created: str


@dataclass(frozen=True, slots=True)
class AccountSettingsRecord:
    """An account's per-region settings (kiln/catalog/governance.py); the defaults if unset."""

    account_id: str
    region: str
    ebs_encryption_by_default: bool = False
    ebs_default_kms_key_id: str | None = None
    image_block_public_access: str = "unblocked"
    allowed_images_state: str = "disabled"
    allowed_images_criteria: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class AccountQuotaRecord:
    """The operator's limits for an account (None: no limit)."""

    account_id: str
    images: int | None = None
    snapshots: int | None = None
    public_images: int | None = None
    shares_per_image: int | None = None


@dataclass(frozen=True, slots=True)
class ImageFindingRecord:
    """One finding of an image's scan (docs/scan.md)."""

    check_id: str
    severity: str
    title: str
    paths: tuple[str, ...]
    first_observed_at: str


@dataclass(frozen=True, slots=True)
class ImageScanRecord:
    """An image's latest scan: ``scanned`` with its findings, or ``unscanned`` with a reason."""

    image_id: str
    region: str
    snapshot_id: str | None
    status: str
    reason: str | None
    policy: str
    bytes_read: int
    findings: tuple[ImageFindingRecord, ...]
    first_scanned_at: str
    scanned_at: str
