"""CreateTags, DeleteTags, DescribeTags, and TagSpecifications of create calls.

EC2 tags are private to the account that sets them: tagging a shared image is allowed and the
owner never sees the grantee's tags (nor the grantee the owner's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import jobs as cat_jobs
from kiln.catalog import networks as cat_networks
from kiln.catalog import snapshots as cat_snapshots
from kiln.catalog import tags as cat_tags
from kiln.catalog.records import Filter, TagRecord
from kiln.errors import ErrorCode, KilnError
from kiln.services.context import Caller, Services
from kiln.services.images.access import visible_image
from kiln.services.instances.access import owned_instances
from kiln.services.keys.access import owned_key_pair
from kiln.services.validate import (
    check_filters,
    check_max_results,
    check_tags,
    decode_token,
    dry_run,
    encode_token,
    id_prefix,
)


@dataclass(frozen=True, slots=True)
class TagSpec:
    resource_type: str
    tags: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class DescribeTagsResult:
    tags: tuple[TagRecord, ...]
    next_token: str | None


def _image(tx: Tx, caller: Caller, rid: str) -> str:
    visible_image(tx, caller, rid)
    return "image"


def _snapshot(tx: Tx, caller: Caller, rid: str) -> str:
    snap = cat_snapshots.get_snapshot(tx, rid, caller.account_id)
    if (
        snap is None
        or snap.region != caller.region
        or not cat_snapshots.snapshot_visible(tx, rid, caller.account_id)
    ):
        raise KilnError(errors.InvalidSnapshotNotFound, f"The snapshot '{rid}' does not exist.")
    return "snapshot"


def _volume(tx: Tx, caller: Caller, rid: str) -> str:
    found = cat_snapshots.get_volumes(tx, [rid], caller.account_id)
    if not found or found[0].owner_id != caller.account_id or found[0].region != caller.region:
        raise KilnError(errors.InvalidVolumeNotFound, f"The volume '{rid}' does not exist.")
    return "volume"


def _instance(tx: Tx, caller: Caller, rid: str) -> str:
    owned_instances(tx, caller, [rid])
    return "instance"


def _key_pair(tx: Tx, caller: Caller, rid: str) -> str:
    owned_key_pair(tx, caller, rid)
    return "key-pair"


def _network(
    kind: str, find: Callable[[Tx, str], object], missing: ErrorCode, what: str
) -> Callable[[Tx, Caller, str], str]:
    def resolve(tx: Tx, caller: Caller, rid: str) -> str:
        rec = find(tx, rid)
        if (
            rec is None
            or getattr(rec, "owner_id", caller.account_id) != caller.account_id
            or getattr(rec, "region", caller.region) != caller.region
        ):
            raise KilnError(missing, f"The {what} ID '{rid}' does not exist")
        return kind

    return resolve


def _rule(tx: Tx, rid: str) -> object:
    found = cat_networks.rules_by_id(tx, [rid])
    return cat_networks.get_group(tx, found[0].group_id) if found else None


def _task(kind: str) -> Callable[[Tx, Caller, str], str]:
    def resolve(tx: Tx, caller: Caller, rid: str) -> str:
        job = cat_jobs.get_job(tx, rid)
        if job is None or job.account_id != caller.account_id or job.region != caller.region:
            raise KilnError(errors.InvalidIDMalformed, f"The ID '{rid}' does not exist")
        return kind

    return resolve


#: id prefix -> resolver(tx, caller, id) -> EC2 resource type (raises the type's NotFound).
RESOURCES: Mapping[str, Callable[[Tx, Caller, str], str]] = {
    "ami": _image,
    "aki": _image,
    "ari": _image,
    "snap": _snapshot,
    "vol": _volume,
    "import-ami": _task("import-image-task"),
    "import-snap": _task("import-snapshot-task"),
    "export-ami": _task("export-image-task"),
    "i": _instance,
    "key": _key_pair,
    "vpc": _network("vpc", cat_networks.get_vpc, errors.InvalidVpcIDNotFound, "vpc"),
    "subnet": _network("subnet", cat_networks.get_subnet, errors.InvalidSubnetIDNotFound, "subnet"),
    "sg": _network(
        "security-group", cat_networks.get_group, errors.InvalidGroupNotFound, "security group"
    ),
    "sgr": _network(
        "security-group-rule",
        _rule,
        errors.InvalidSecurityGroupRuleIdNotFound,
        "security group rule",
    ),
}


def resource_type_of(tx: Tx, caller: Caller, resource_id: str) -> str:
    resolver = RESOURCES.get(id_prefix(resource_id) or "")
    if resolver is None:
        raise KilnError(errors.InvalidIDMalformed, f"The ID '{resource_id}' is not valid")
    return resolver(tx, caller, resource_id)


def check_tag_specs(specs: Sequence[TagSpec], allowed: Sequence[str]) -> None:
    for spec in specs:
        if spec.resource_type not in allowed:
            raise KilnError(
                errors.InvalidParameterValue,
                f"'{spec.resource_type}' is not a valid taggable resource type for "
                f"this operation. Valid: {', '.join(allowed)}",
            )
        if not spec.tags:
            raise KilnError(
                errors.InvalidParameterValue, "Tag specification must have at least one tag"
            )
        check_tags(spec.tags)


def apply_tag_specs(
    tx: Tx, caller: Caller, specs: Sequence[TagSpec], created: Mapping[str, Sequence[str]]
) -> None:
    """Tag each new resource of each spec's type (``created``: type -> new ids)."""
    for spec in specs:
        for rid in created.get(spec.resource_type, ()):
            cat_tags.create_tags(
                tx, rid, spec.resource_type, caller.region, caller.account_id, spec.tags
            )


def create_tags(
    services: Services,
    caller: Caller,
    resource_ids: Sequence[str],
    tags: Sequence[tuple[str, str]],
    dry_run_flag: bool,
) -> None:
    if not resource_ids:
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter ResourceId"
        )
    if not tags:
        raise KilnError(errors.MissingParameter, "The request must contain the parameter Tag")
    check_tags(tags)
    with services.catalog.write() as tx:
        types = {rid: resource_type_of(tx, caller, rid) for rid in resource_ids}
        dry_run(dry_run_flag)
        for rid, rtype in types.items():
            cat_tags.create_tags(tx, rid, rtype, caller.region, caller.account_id, tags)
            have = cat_tags.tags_for(tx, [rid], caller.account_id).get(rid, [])
            if len(have) > 50:
                raise KilnError(
                    errors.TagLimitExceeded,
                    f"The maximum number of tags per resource ({rid}) is 50.",
                )


def delete_tags(
    services: Services,
    caller: Caller,
    resource_ids: Sequence[str],
    tags: Sequence[tuple[str, str | None]] | None,
    dry_run_flag: bool,
) -> None:
    if not resource_ids:
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter ResourceId"
        )
    with services.catalog.write() as tx:
        for rid in resource_ids:
            resource_type_of(tx, caller, rid)
        dry_run(dry_run_flag)
        for rid in resource_ids:
            cat_tags.delete_tags(tx, rid, caller.account_id, tags)


def describe_tags(
    services: Services,
    caller: Caller,
    filters: Sequence[Filter],
    max_results: int | None,
    next_token: str | None,
    dry_run_flag: bool,
) -> DescribeTagsResult:
    kinds = {name: "str" for name in cat_tags.TAG_FILTERS}
    checked = check_filters(filters, kinds, tag_filters=False)
    check_max_results(max_results, 5, 1000)
    dry_run(dry_run_flag)
    fingerprint = [
        "DescribeTags",
        caller.account_id,
        caller.region,
        [(f.name, f.values) for f in checked],
    ]
    after = decode_token(next_token, fingerprint)
    position = (str(after[0]), str(after[1])) if isinstance(after, list) else None
    limit = max_results + 1 if max_results else None
    with services.catalog.read() as tx:
        found = cat_tags.describe_tags(
            tx, caller.account_id, caller.region, checked, position, limit, services.catalog.dialect
        )
    token = None
    if max_results and len(found) > max_results:
        found = found[:max_results]
        token = encode_token([found[-1].resource_id, found[-1].key], fingerprint)
    return DescribeTagsResult(tuple(found), token)
