"""The catalog's tables as SQLAlchemy 2 typed models.

Timestamps are stored as EC2-formatted UTC strings (``2026-11-23T19:08:02.000Z``): they sort
lexicographically, EC2 filters such as ``creation-date=2026-11-*`` apply to them directly, and
they read the same on SQLite and PostgreSQL. The schema is created by the alembic migrations in
``kiln/catalog/migrations``; ``tests/catalog`` checks that the migrated schema equals these models.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(32)
ACCOUNT = String(12)
TS = String(24)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Account(Base):
    __tablename__ = "accounts"
    account_id: Mapped[str] = mapped_column(ACCOUNT, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    alias: Mapped[str | None] = mapped_column(String(64), unique=True)
    created: Mapped[str] = mapped_column(TS)
    # The operator's "verified provider" mark (0013; docs/community.md).
    verified: Mapped[bool] = mapped_column(Boolean, server_default=false())


class AccessKey(Base):
    __tablename__ = "access_keys"
    access_key_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    # nonce || AES-256-GCM(secret), sealed with the server master key (see docs/catalog.md).
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="Active")
    created: Mapped[str] = mapped_column(TS)


class Region(Base):
    __tablename__ = "regions"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    created: Mapped[str] = mapped_column(TS)


class Image(Base):
    __tablename__ = "images"
    image_id: Mapped[str] = mapped_column(ID, primary_key=True)
    region: Mapped[str] = mapped_column(ForeignKey("regions.name"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    state_reason_code: Mapped[str | None] = mapped_column(String(64))
    state_reason_message: Mapped[str | None] = mapped_column(Text)
    architecture: Mapped[str] = mapped_column(String(16))
    platform: Mapped[str | None] = mapped_column(String(16))
    platform_details: Mapped[str] = mapped_column(String(64))
    usage_operation: Mapped[str] = mapped_column(String(32))
    root_device_name: Mapped[str | None] = mapped_column(String(64))
    root_device_type: Mapped[str] = mapped_column(String(16))
    virtualization_type: Mapped[str] = mapped_column(String(16))
    boot_mode: Mapped[str | None] = mapped_column(String(16))
    ena_support: Mapped[bool | None] = mapped_column(Boolean)
    sriov_net_support: Mapped[str | None] = mapped_column(String(16))
    imds_support: Mapped[str | None] = mapped_column(String(16))
    tpm_support: Mapped[str | None] = mapped_column(String(16))
    uefi_data: Mapped[str | None] = mapped_column(Text)
    kernel_id: Mapped[str | None] = mapped_column(ID)
    ramdisk_id: Mapped[str | None] = mapped_column(ID)
    image_location: Mapped[str | None] = mapped_column(String(512))
    image_type: Mapped[str] = mapped_column(String(16))
    hypervisor: Mapped[str] = mapped_column(String(16))
    # Derived from launch_permissions (group "all"); kept in the row so visibility is one index.
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    creation_date: Mapped[str] = mapped_column(TS)
    deprecation_time: Mapped[str | None] = mapped_column(TS)
    deregistration_protection: Mapped[str] = mapped_column(String(64), default="disabled")
    deregistered_at: Mapped[str | None] = mapped_column(TS)
    last_launched_time: Mapped[str | None] = mapped_column(TS)
    source_image_id: Mapped[str | None] = mapped_column(ID)
    source_image_region: Mapped[str | None] = mapped_column(String(32))
    source_instance_id: Mapped[str | None] = mapped_column(ID)
    # For instance-store images: the bundle parsed from ImageLocation (see docs/api.md#bundle).
    bundle: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        # Owner + name (wildcard prefix) scans: the common DescribeImages shape.
        Index(
            "ix_images_region_owner_name",
            "region",
            "owner_id",
            "name",
            postgresql_ops={"name": "text_pattern_ops"},
        ),
        Index("ix_images_region_public", "region", "is_public"),
        Index(
            "ix_images_region_name", "region", "name", postgresql_ops={"name": "text_pattern_ops"}
        ),
        # A name is unique per owner and region among images that still exist.
        Index(
            "uq_images_live_name",
            "region",
            "owner_id",
            "name",
            unique=True,
            sqlite_where=text("state != 'deregistered'"),
            postgresql_where=text("state != 'deregistered'"),
        ),
    )


class BlockDeviceMapping(Base):
    __tablename__ = "block_device_mappings"
    image_id: Mapped[str] = mapped_column(
        ForeignKey("images.image_id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_name: Mapped[str] = mapped_column(String(64))
    virtual_name: Mapped[str | None] = mapped_column(String(64))
    no_device: Mapped[bool] = mapped_column(Boolean, default=False)
    is_ebs: Mapped[bool] = mapped_column(Boolean, default=False)
    snapshot_id: Mapped[str | None] = mapped_column(ID, index=True)
    volume_size: Mapped[int | None] = mapped_column(Integer)
    volume_type: Mapped[str | None] = mapped_column(String(16))
    iops: Mapped[int | None] = mapped_column(Integer)
    throughput: Mapped[int | None] = mapped_column(Integer)
    delete_on_termination: Mapped[bool | None] = mapped_column(Boolean)
    encrypted: Mapped[bool | None] = mapped_column(Boolean)
    kms_key_id: Mapped[str | None] = mapped_column(String(256))
    outpost_arn: Mapped[str | None] = mapped_column(String(256))
    availability_zone: Mapped[str | None] = mapped_column(String(64))
    volume_initialization_rate: Mapped[int | None] = mapped_column(Integer)
    ebs_card_index: Mapped[int | None] = mapped_column(Integer)


class ProductCode(Base):
    __tablename__ = "image_product_codes"
    image_id: Mapped[str] = mapped_column(
        ForeignKey("images.image_id", ondelete="CASCADE"), primary_key=True
    )
    product_code_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_code_type: Mapped[str] = mapped_column(String(16), default="marketplace")


class LaunchPermission(Base):
    """One grant: exactly one of user_id, group_name ('all'), organization_arn, ou_arn."""

    __tablename__ = "launch_permissions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    image_id: Mapped[str] = mapped_column(
        ForeignKey("images.image_id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str | None] = mapped_column(ACCOUNT)
    group_name: Mapped[str | None] = mapped_column(String(16))
    organization_arn: Mapped[str | None] = mapped_column(String(256))
    organizational_unit_arn: Mapped[str | None] = mapped_column(String(256))
    __table_args__ = (Index("ix_launch_permissions_user_image", "user_id", "image_id"),)


class Snapshot(Base):
    __tablename__ = "snapshots"
    snapshot_id: Mapped[str] = mapped_column(ID, primary_key=True)
    region: Mapped[str] = mapped_column(ForeignKey("regions.name"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    volume_id: Mapped[str | None] = mapped_column(ID)
    volume_size: Mapped[int] = mapped_column(Integer)  # GiB, rounded up
    full_size_bytes: Mapped[int | None] = mapped_column(BigInteger)  # virtual size in bytes
    state: Mapped[str] = mapped_column(String(16))
    state_message: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[str] = mapped_column(String(8), default="0%")
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    kms_key_id: Mapped[str | None] = mapped_column(String(256))
    data_key_id: Mapped[str | None] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(String(255))
    start_time: Mapped[str] = mapped_column(TS)
    completion_time: Mapped[str | None] = mapped_column(TS)
    parent_snapshot_id: Mapped[str | None] = mapped_column(ID)
    storage_tier: Mapped[str] = mapped_column(String(16), default="standard")
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (Index("ix_snapshots_region_owner", "region", "owner_id"),)


class SnapshotPermission(Base):
    """createVolumePermission: user_id or group_name ('all')."""

    __tablename__ = "snapshot_permissions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    snapshot_id: Mapped[str] = mapped_column(
        ForeignKey("snapshots.snapshot_id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str | None] = mapped_column(ACCOUNT)
    group_name: Mapped[str | None] = mapped_column(String(16))
    __table_args__ = (Index("ix_snapshot_permissions_user_snapshot", "user_id", "snapshot_id"),)


class Volume(Base):
    __tablename__ = "volumes"
    volume_id: Mapped[str] = mapped_column(ID, primary_key=True)
    region: Mapped[str] = mapped_column(ForeignKey("regions.name"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    size: Mapped[int] = mapped_column(Integer)  # GiB
    snapshot_id: Mapped[str | None] = mapped_column(ID, index=True)
    availability_zone: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    volume_type: Mapped[str] = mapped_column(String(16), default="gp3")
    iops: Mapped[int | None] = mapped_column(Integer)
    throughput: Mapped[int | None] = mapped_column(Integer)
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    kms_key_id: Mapped[str | None] = mapped_column(String(256))
    multi_attach_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    create_time: Mapped[str] = mapped_column(TS)
    instance_id: Mapped[str | None] = mapped_column(ID, index=True)
    device: Mapped[str | None] = mapped_column(String(64))
    attach_time: Mapped[str | None] = mapped_column(TS)
    delete_on_termination: Mapped[bool | None] = mapped_column(Boolean)
    __table_args__ = (Index("ix_volumes_region_owner", "region", "owner_id"),)


class Tag(Base):
    """A tag as one account sees it: EC2 tags on shared resources are private to the tagger."""

    __tablename__ = "tags"
    resource_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ACCOUNT, primary_key=True)  # the tagging account
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), default="")
    resource_type: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(32))
    __table_args__ = (
        Index("ix_tags_key_value_resource", "key", "value", "resource_id"),
        Index("ix_tags_owner_region", "owner_id", "region", "resource_type"),
    )


class Job(Base):
    """A long operation (import, export, copy) that survives a restart."""

    __tablename__ = "jobs"
    job_id: Mapped[str] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(ACCOUNT)
    state: Mapped[str] = mapped_column(String(16))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    status_message: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created: Mapped[str] = mapped_column(TS)
    updated: Mapped[str] = mapped_column(TS)
    __table_args__ = (
        Index("ix_jobs_state", "state"),
        Index("ix_jobs_account_kind", "account_id", "region", "kind"),
    )


class KmsKey(Base):
    __tablename__ = "kms_keys"
    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    region: Mapped[str] = mapped_column(String(32))
    alias: Mapped[str | None] = mapped_column(String(256))
    # nonce || AES-256-GCM(32-byte key-encryption key), sealed with the server master key.
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16), default="Enabled")
    created: Mapped[str] = mapped_column(TS)
    # KMS API (kiln/catalog/kms_keys.py; migration 0004): ``alias`` above is the key's
    # AWS-managed alias (alias/aws/ebs); aliases a caller makes are rows of kms_aliases.
    description: Mapped[str | None] = mapped_column(String(8192))
    deletion_date: Mapped[str | None] = mapped_column(TS)
    pending_window_days: Mapped[int | None] = mapped_column(Integer)
    __table_args__ = (
        Index("uq_kms_keys_account_region_alias", "account_id", "region", "alias", unique=True),
    )


class KmsAlias(Base):
    """An alias a caller made (CreateAlias); unique per account and region, as on AWS."""

    __tablename__ = "kms_aliases"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), primary_key=True)
    region: Mapped[str] = mapped_column(String(32), primary_key=True)
    alias_name: Mapped[str] = mapped_column(String(256), primary_key=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("kms_keys.key_id"), index=True)
    created: Mapped[str] = mapped_column(TS)


class KmsTag(Base):
    """A tag on a KMS key (TagResource); KMS tags are the key owner's, unlike EC2's."""

    __tablename__ = "kms_tags"
    key_id: Mapped[str] = mapped_column(ForeignKey("kms_keys.key_id"), primary_key=True)
    tag_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    tag_value: Mapped[str] = mapped_column(String(256))


# --- Instances and key pairs (kiln/catalog/instances.py, keypairs.py; migration 0002) ---------
class KeyPair(Base):
    __tablename__ = "key_pairs"
    key_pair_id: Mapped[str] = mapped_column(ID, primary_key=True)
    region: Mapped[str] = mapped_column(ForeignKey("regions.name"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    key_name: Mapped[str] = mapped_column(String(255))
    key_type: Mapped[str] = mapped_column(String(16))
    key_fingerprint: Mapped[str] = mapped_column(String(128))
    public_key: Mapped[str] = mapped_column(Text)  # one OpenSSH line: "ssh-ed25519 AAAA…"
    create_time: Mapped[str] = mapped_column(TS)
    __table_args__ = (
        Index("uq_key_pairs_region_owner_name", "region", "owner_id", "key_name", unique=True),
    )


class Instance(Base):
    """A VM. Its EBS volumes are rows of ``volumes`` (instance_id, device); an instance-store
    root disk is a file in the instance's run directory (docs/instances.md)."""

    __tablename__ = "instances"
    instance_id: Mapped[str] = mapped_column(ID, primary_key=True)
    region: Mapped[str] = mapped_column(ForeignKey("regions.name"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    reservation_id: Mapped[str] = mapped_column(ID, index=True)
    image_id: Mapped[str] = mapped_column(ID)
    instance_type: Mapped[str] = mapped_column(String(32))
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mib: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    state_reason_code: Mapped[str | None] = mapped_column(String(64))
    state_reason_message: Mapped[str | None] = mapped_column(Text)
    state_transition_reason: Mapped[str | None] = mapped_column(String(255))
    key_name: Mapped[str | None] = mapped_column(String(255))
    public_key: Mapped[str | None] = mapped_column(Text)  # the key pair's key at launch
    launch_time: Mapped[str] = mapped_column(TS)
    availability_zone: Mapped[str] = mapped_column(String(64))
    ami_launch_index: Mapped[int] = mapped_column(Integer, default=0)
    architecture: Mapped[str] = mapped_column(String(16))
    root_device_name: Mapped[str] = mapped_column(String(64))
    root_device_type: Mapped[str] = mapped_column(String(16))  # ebs | instance-store
    # For instance-store roots: the bundle's snapshot and the disk size; EBS roots use volumes.
    root_snapshot_id: Mapped[str | None] = mapped_column(ID)
    ssh_port: Mapped[int | None] = mapped_column(Integer)
    user_data: Mapped[str | None] = mapped_column(Text)  # base64, as sent
    disable_api_termination: Mapped[bool] = mapped_column(Boolean, default=False)
    shutdown_behavior: Mapped[str] = mapped_column(String(16), default="stop")
    security_groups: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    client_token: Mapped[str | None] = mapped_column(String(64))
    private_ip: Mapped[str] = mapped_column(String(45))
    mac_address: Mapped[str] = mapped_column(String(17))
    ebs_optimized: Mapped[bool] = mapped_column(Boolean, default=False)
    boot_count: Mapped[int] = mapped_column(Integer, default=0)  # successful VM starts
    terminated_at: Mapped[str | None] = mapped_column(TS)
    # Networks (migration 0005; docs/networks.md). NULL vpc_id: launched before VPCs existed.
    vpc_id: Mapped[str | None] = mapped_column(ID, index=True)
    subnet_id: Mapped[str | None] = mapped_column(ID)
    public_ip: Mapped[str | None] = mapped_column(String(45))  # 127.x while running
    metadata_http_tokens: Mapped[str] = mapped_column(String(16), server_default="optional")
    metadata_hop_limit: Mapped[int] = mapped_column(Integer, server_default="1")
    metadata_http_endpoint: Mapped[str] = mapped_column(String(16), server_default="enabled")
    metadata_tags: Mapped[str] = mapped_column(String(16), server_default="disabled")
    __table_args__ = (
        Index("ix_instances_region_owner", "region", "owner_id"),
        Index("ix_instances_state", "state"),
    )


# --- Networks (kiln/catalog/networks.py; migration 0005) ------------------------------------
class DefaultVpc(Base):
    """Each account's default VPC per region, once made (``vpc_id`` NULL: the account deleted
    it, and it is not made again). The primary key makes the lazy creation race-safe."""

    __tablename__ = "default_vpcs"
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), primary_key=True)
    region: Mapped[str] = mapped_column(ForeignKey("regions.name"), primary_key=True)
    vpc_id: Mapped[str | None] = mapped_column(ID)


class Vpc(Base):
    __tablename__ = "vpcs"
    vpc_id: Mapped[str] = mapped_column(ID, primary_key=True)
    region: Mapped[str] = mapped_column(ForeignKey("regions.name"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    cidr_block: Mapped[str] = mapped_column(String(18))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16))
    enable_dns_support: Mapped[bool] = mapped_column(Boolean, default=True)
    enable_dns_hostnames: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[str] = mapped_column(TS)
    __table_args__ = (Index("ix_vpcs_region_owner", "region", "owner_id"),)


class Subnet(Base):
    __tablename__ = "subnets"
    subnet_id: Mapped[str] = mapped_column(ID, primary_key=True)
    vpc_id: Mapped[str] = mapped_column(ForeignKey("vpcs.vpc_id"), index=True)
    region: Mapped[str] = mapped_column(ForeignKey("regions.name"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    availability_zone: Mapped[str] = mapped_column(String(64))
    cidr_block: Mapped[str] = mapped_column(String(18))
    default_for_az: Mapped[bool] = mapped_column(Boolean, default=False)
    map_public_ip_on_launch: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16))
    created: Mapped[str] = mapped_column(TS)


class SecurityGroup(Base):
    __tablename__ = "security_groups"
    group_id: Mapped[str] = mapped_column(ID, primary_key=True)
    vpc_id: Mapped[str] = mapped_column(ForeignKey("vpcs.vpc_id"))
    region: Mapped[str] = mapped_column(ForeignKey("regions.name"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    group_name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(String(255))
    __table_args__ = (Index("uq_security_groups_vpc_name", "vpc_id", "group_name", unique=True),)


class SecurityGroupRule(Base):
    """One rule: IpProtocol "tcp"/"udp"/"icmp"/"-1" (or another protocol number), ports
    (-1: all), and one peer: an IPv4 or IPv6 CIDR or a group."""

    __tablename__ = "security_group_rules"
    rule_id: Mapped[str] = mapped_column(ID, primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("security_groups.group_id"), index=True)
    is_egress: Mapped[bool] = mapped_column(Boolean)
    ip_protocol: Mapped[str] = mapped_column(String(8))
    from_port: Mapped[int] = mapped_column(Integer)
    to_port: Mapped[int] = mapped_column(Integer)
    cidr_ipv4: Mapped[str | None] = mapped_column(String(18))
    cidr_ipv6: Mapped[str | None] = mapped_column(String(49))
    referenced_group_id: Mapped[str | None] = mapped_column(ID, index=True)
    description: Mapped[str | None] = mapped_column(String(255))


# --- Buckets (kiln/catalog/buckets.py; migration 0003) ---------------------------------------
class Bucket(Base):
    """A bucket (``DATA_DIR/buckets/<name>``) and the account that owns it. Names are global,
    as on S3; only the owner reads or writes what is in it (docs/security.md#buckets)."""

    __tablename__ = "buckets"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    created: Mapped[str] = mapped_column(TS)
    # Its LocationConstraint (the region of the CreateBucket request); us-east-1 before 0008.
    region: Mapped[str] = mapped_column(String(32), server_default=text("'us-east-1'"))


class MultipartUpload(Base):
    """An S3 multipart upload in progress (CreateMultipartUpload until Complete or Abort). Its
    parts are files under ``DATA_DIR/s3/uploads/<upload id>/`` (kiln/runtime/layout.py)."""

    __tablename__ = "multipart_uploads"
    upload_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket: Mapped[str] = mapped_column(ForeignKey("buckets.name"), index=True)
    key: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    initiated: Mapped[str] = mapped_column(TS)
    # What the object gets when the upload completes: Content-Type, x-amz-meta-*, ...
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON)


# --- Image aliases and SSM parameters (kiln/catalog/aliases.py, parameters.py; migration 0007) --
class ImageAlias(Base):
    """An image id the operator made stand for another image or a family's newest image
    (``kiln alias set``; docs/aliases.md). Per region, like image ids; for every account."""

    __tablename__ = "image_aliases"
    region: Mapped[str] = mapped_column(ForeignKey("regions.name"), primary_key=True)
    alias: Mapped[str] = mapped_column(ID, primary_key=True)
    # an image id (ami-…) or a family (kiln/debian): see kiln/services/images/families.py
    target: Mapped[str] = mapped_column(String(128))
    created: Mapped[str] = mapped_column(TS)


class PublicParameter(Base):
    """A public SSM parameter name under /aws/ that the operator maps to an image family
    (``kiln parameter map``; docs/ssm.md#public-parameters). Answers in every region."""

    __tablename__ = "public_parameters"
    name: Mapped[str] = mapped_column(String(2048), primary_key=True)
    family: Mapped[str] = mapped_column(String(128))
    created: Mapped[str] = mapped_column(TS)


class ParameterVersion(Base):
    """One version of an account's SSM parameter. ``latest`` marks the current one; a
    SecureString's value is sealed with the server master key (``value_sealed``)."""

    __tablename__ = "parameter_versions"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), primary_key=True)
    region: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(2048), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    latest: Mapped[bool] = mapped_column(Boolean)
    type: Mapped[str] = mapped_column(String(16))
    value: Mapped[str | None] = mapped_column(Text)
    value_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    description: Mapped[str | None] = mapped_column(String(1024))
    key_id: Mapped[str | None] = mapped_column(String(2048))
    allowed_pattern: Mapped[str | None] = mapped_column(String(1024))
    tier: Mapped[str] = mapped_column(String(32))
    data_type: Mapped[str] = mapped_column(String(128))
    modified: Mapped[str] = mapped_column(TS)
    modified_user: Mapped[str] = mapped_column(String(256))
    __table_args__ = (
        Index("ix_parameter_versions_current", "account_id", "region", "latest", "name"),
    )


# --- Lifecycle policies (kiln/catalog/lifecycle.py; migration 0009_lifecycle) ----------------
class LifecyclePolicy(Base):
    """An account's lifecycle policy in a region (``kiln lifecycle apply``; docs/lifecycle.md).
    ``document`` holds the members of Image Builder's CreateLifecyclePolicy request as given
    (botocore's shape, so an Image Builder API can answer with it unchanged); ``selection`` is
    Kiln's extension (image families and name prefixes). ``last_run_at`` is when the last run
    started (the scheduler's clock, kept across restarts); ``run_started_at`` is set while a
    run holds the policy (one run at a time, across processes)."""

    __tablename__ = "lifecycle_policies"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), primary_key=True)
    region: Mapped[str] = mapped_column(ForeignKey("regions.name"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    arn: Mapped[str] = mapped_column(String(1024))
    status: Mapped[str] = mapped_column(String(16))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    selection: Mapped[dict[str, Any]] = mapped_column(JSON)
    created: Mapped[str] = mapped_column(TS)
    updated: Mapped[str] = mapped_column(TS)
    last_run_at: Mapped[str | None] = mapped_column(TS)
    run_started_at: Mapped[str | None] = mapped_column(TS)
    last_run: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class RecycleBinRule(Base):
    """A Recycle Bin retention rule (the rbin API; docs/recycle-bin.md). ``resource_tags`` and
    ``exclude_tags`` are lists of ``{"ResourceTagKey", "ResourceTagValue"}``; ``tags`` the
    rule's own tags as ``{"Key", "Value"}``. ``lock_state`` is None (never locked), ``locked``
    or ``unlocked`` (``pending_unlock`` until ``lock_end_time``, read at the time of asking)."""

    __tablename__ = "recycle_bin_rules"
    rule_id: Mapped[str] = mapped_column(String(11), primary_key=True)
    region: Mapped[str] = mapped_column(ForeignKey("regions.name"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    resource_type: Mapped[str] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(String(255))
    retention_days: Mapped[int] = mapped_column(Integer)
    resource_tags: Mapped[list[Any]] = mapped_column(JSON)
    exclude_tags: Mapped[list[Any]] = mapped_column(JSON)
    tags: Mapped[list[Any]] = mapped_column(JSON)
    unlock_delay_days: Mapped[int | None] = mapped_column(Integer)
    lock_state: Mapped[str | None] = mapped_column(String(16))
    lock_end_time: Mapped[str | None] = mapped_column(TS)
    created: Mapped[str] = mapped_column(TS)

    __table_args__ = (Index("ix_recycle_bin_rules_region_owner", "region", "owner_id"),)


class RecycleBinImage(Base):
    """A deregistered image a retention rule keeps (its row in ``images`` stays, state
    ``deregistered``) until ``exit_time``; its snapshots are held with it, and deleted at the
    purge when DeregisterImage asked for ``delete_snapshots``."""

    __tablename__ = "recycle_bin_images"
    image_id: Mapped[str] = mapped_column(
        ForeignKey("images.image_id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(ForeignKey("regions.name"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    enter_time: Mapped[str] = mapped_column(TS)
    exit_time: Mapped[str] = mapped_column(TS, index=True)
    delete_snapshots: Mapped[bool] = mapped_column(Boolean)
    prior_state: Mapped[str] = mapped_column(String(16))


class ImageUsageReport(Base):
    """CreateImageUsageReport: who launched an image, counted when the report is made.
    ``entries`` are ``{"ResourceType", "AccountId", "UsageCount"}``; its tags are EC2 tags."""

    __tablename__ = "image_usage_reports"
    report_id: Mapped[str] = mapped_column(ID, primary_key=True)
    region: Mapped[str] = mapped_column(ForeignKey("regions.name"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    image_id: Mapped[str] = mapped_column(ID)
    resource_types: Mapped[list[Any]] = mapped_column(JSON)
    account_ids: Mapped[list[Any]] = mapped_column(JSON)
    entries: Mapped[list[Any]] = mapped_column(JSON)
    client_token: Mapped[str | None] = mapped_column(String(128))
    creation_time: Mapped[str] = mapped_column(TS)
    expiration_time: Mapped[str] = mapped_column(TS)

    __table_args__ = (Index("ix_image_usage_reports_region_owner", "region", "owner_id"),)


# --- Governance (kiln/catalog/governance.py, kms_grants.py; migration 0011_govern) -------------------
class KmsGrant(Base):
    """A KMS grant (CreateGrant): lets ``grantee_principal`` (an account id or an IAM ARN of
    that account) use the key for ``operations``; RevokeGrant deletes the row."""

    __tablename__ = "kms_grants"
    grant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("kms_keys.key_id"), index=True)
    grantee_principal: Mapped[str] = mapped_column(String(256))
    grantee_account: Mapped[str] = mapped_column(ACCOUNT, index=True)
    retiring_principal: Mapped[str | None] = mapped_column(String(256))
    operations: Mapped[list[str]] = mapped_column(JSON)
    name: Mapped[str | None] = mapped_column(String(256))
    issuing_account: Mapped[str] = mapped_column(ACCOUNT)
    created: Mapped[str] = mapped_column(TS)


class AccountSettings(Base):
    """An account's per-region EC2 settings: EBS encryption by default and its key, block
    public access for AMIs, Allowed AMIs (state and criteria). No row: every default."""

    __tablename__ = "account_settings"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), primary_key=True)
    region: Mapped[str] = mapped_column(String(32), primary_key=True)
    ebs_encryption_by_default: Mapped[bool] = mapped_column(Boolean, default=False)
    ebs_default_kms_key_id: Mapped[str | None] = mapped_column(String(64))
    image_block_public_access: Mapped[str] = mapped_column(String(32), default="unblocked")
    allowed_images_state: Mapped[str] = mapped_column(String(16), default="disabled")
    allowed_images_criteria: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)


class AccountQuota(Base):
    """The operator's limits for one account (``kiln account quota``), applied in each region;
    NULL: no limit."""

    __tablename__ = "account_quotas"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), primary_key=True)
    images: Mapped[int | None] = mapped_column(Integer)
    snapshots: Mapped[int | None] = mapped_column(Integer)
    public_images: Mapped[int | None] = mapped_column(Integer)
    shares_per_image: Mapped[int | None] = mapped_column(Integer)


# --- Marketplace (kiln/catalog/marketplace.py; migration 0014_market; docs/marketplace.md) ---
class MarketplaceProduct(Base):
    """A vendor's product: its code is attached to the vendor's images (``image_product_codes``).
    ``prices`` maps an instance type to its hourly price in USD, as decimal text."""

    __tablename__ = "marketplace_products"
    product_id: Mapped[str] = mapped_column(ID, primary_key=True)
    product_code: Mapped[str] = mapped_column(String(64), unique=True)
    vendor_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text)
    prices: Mapped[dict[str, Any]] = mapped_column(JSON)
    created: Mapped[str] = mapped_column(TS)


class MarketplaceSubscription(Base):
    """A buyer's subscription to a product (accepting its terms): its launches are allowed."""

    __tablename__ = "marketplace_subscriptions"
    product_id: Mapped[str] = mapped_column(
        ForeignKey("marketplace_products.product_id", ondelete="CASCADE"), primary_key=True
    )
    buyer_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), primary_key=True)
    subscribed: Mapped[str] = mapped_column(TS)


class InstanceProductCode(Base):
    """The product codes an instance carries: its image's at launch (DescribeInstances)."""

    __tablename__ = "instance_product_codes"
    instance_id: Mapped[str] = mapped_column(
        ForeignKey("instances.instance_id", ondelete="CASCADE"), primary_key=True
    )
    product_code_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_code_type: Mapped[str] = mapped_column(String(16))


class MarketplaceUsage(Base):
    """One metered period of an instance of a product: from the moment it became ``running``
    to the moment it left that state (``ended`` NULL while it runs)."""

    __tablename__ = "marketplace_usage"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    product_id: Mapped[str] = mapped_column(
        ForeignKey("marketplace_products.product_id", ondelete="CASCADE"), index=True
    )
    instance_id: Mapped[str] = mapped_column(ID, index=True)
    region: Mapped[str] = mapped_column(ForeignKey("regions.name"))
    buyer_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    instance_type: Mapped[str] = mapped_column(String(32))
    started: Mapped[str] = mapped_column(TS)
    ended: Mapped[str | None] = mapped_column(TS)


# --- Signing (kiln/catalog/signing.py; migration 0015_sign; docs/signing.md) ----------------------
class ImageSignature(Base):
    """An owner's ed25519 signature of an image (``kiln image sign``): the canonical document
    signed (docs/signing.md#the-signed-document), its SHA-256 and the signer's public key.
    Signing again replaces it; it goes with the image."""

    __tablename__ = "image_signatures"
    image_id: Mapped[str] = mapped_column(
        ForeignKey("images.image_id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # raw 32 bytes
    document: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))  # hex SHA-256 of the document
    signature: Mapped[bytes] = mapped_column(LargeBinary)  # raw 64 bytes
    signed_by: Mapped[str] = mapped_column(ACCOUNT)
    signed_at: Mapped[str] = mapped_column(TS)


class TrustedSigningKey(Base):
    """A public key the operator trusts for image signatures in one region (``kiln trust``)."""

    __tablename__ = "trusted_signing_keys"
    region: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # raw 32 bytes
    comment: Mapped[str | None] = mapped_column(String(256))
    added: Mapped[str] = mapped_column(TS)


class SigningPolicy(Base):
    """A region's signing setting (``kiln trust require``): whether RunInstances and CopyImage
    require a valid signature by a trusted key. No row: not required."""

    __tablename__ = "signing_policies"
    region: Mapped[str] = mapped_column(String(32), primary_key=True)
    require_signature: Mapped[bool] = mapped_column(Boolean, default=False)
    updated: Mapped[str] = mapped_column(TS)


# --- Offline compliance scans (kiln/catalog/scans.py; migration 0016_scan) --------------------
class ImageScan(Base):
    """The latest scan of an image (``kiln scan``; docs/scan.md): ``status`` is ``scanned`` or
    ``unscanned`` (``reason`` says why); ``findings`` are ``{"CheckId", "Severity", "Title",
    "Paths", "FirstObservedAt"}``. A new scan replaces the row."""

    __tablename__ = "image_scans"
    image_id: Mapped[str] = mapped_column(
        ForeignKey("images.image_id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(ForeignKey("regions.name"))
    snapshot_id: Mapped[str | None] = mapped_column(ID)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    policy: Mapped[str] = mapped_column(String(128))
    bytes_read: Mapped[int] = mapped_column(BigInteger)
    findings: Mapped[list[Any]] = mapped_column(JSON)
    first_scanned_at: Mapped[str] = mapped_column(TS)
    scanned_at: Mapped[str] = mapped_column(TS)


class CveFeed(Base):
    """The imported CVE feed (``kiln cve import``; docs/sbom.md): one row, ``feed_id`` 1,
    replaced whole with its advisories."""

    __tablename__ = "cve_feeds"
    feed_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    packages: Mapped[int] = mapped_column(Integer)
    cves: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[str] = mapped_column(TS)


class CveAdvisory(Base):
    """One source package's advisories in the imported feed: ``advisories`` is a list of
    ``[cve, release, status, fixed_version or null, urgency]``."""

    __tablename__ = "cve_advisories"
    package: Mapped[str] = mapped_column(String(256), primary_key=True)
    advisories: Mapped[list[Any]] = mapped_column(JSON)


class BuildVersion(Base):
    """One build of an image recipe (``kiln build``; docs/builds.md#versions): the recipe's
    semantic version and its build number, ``/1``, ``/2``… per account, region, recipe and
    version, never reused. ``state`` is ``building``, ``available`` (``image_id`` the image
    made) or ``failed`` (``reason``); ``log`` is the step log."""

    __tablename__ = "build_versions"
    __table_args__ = (
        Index(None, "account_id", "region", "recipe", "version", "build", unique=True),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    region: Mapped[str] = mapped_column(ForeignKey("regions.name"))
    recipe: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(32))
    build: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    image_id: Mapped[str | None] = mapped_column(ID)
    parent_image_id: Mapped[str | None] = mapped_column(ID)
    reason: Mapped[str | None] = mapped_column(Text)
    log: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[str] = mapped_column(TS)
    finished_at: Mapped[str | None] = mapped_column(TS)


class ImageBuilderResource(Base):
    """An Image Builder API resource (docs/imagebuilder.md): a ``component``, an
    ``image-recipe``, a ``distribution-configuration``, an ``infrastructure-configuration`` or an
    ``image`` (one build), keyed by its ARN. ``body`` is the resource as the API describes it
    (JSON, the model's member names); an image's ``state`` is its ``ImageStatus`` and ``log``
    its step log (JSON lines)."""

    __tablename__ = "imagebuilder_resources"
    __table_args__ = (Index(None, "account_id", "region", "kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    arn: Mapped[str] = mapped_column(String(512), unique=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    region: Mapped[str] = mapped_column(ForeignKey("regions.name"))
    kind: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(32), default="")
    state: Mapped[str] = mapped_column(String(16), default="")
    body: Mapped[str] = mapped_column(Text)
    log: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[str] = mapped_column(TS)
