"""DescribeImages: ids, owners, executable users, filters, deprecated/disabled, pages."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import images as cat
from kiln.catalog.image_query import IMAGE_FILTERS, ImageQuery, query_image_ids
from kiln.catalog.records import Filter, ImageRecord, ec2_time, utc_now
from kiln.errors import KilnError
from kiln.services.accounts.owners import resolve_owners
from kiln.services.context import Caller, Services
from kiln.services.images import allowed_images
from kiln.services.images.access import not_found
from kiln.services.images.aliases import resolve_image_id
from kiln.services.validate import (
    ACCOUNT_RE,
    check_filters,
    check_image_id,
    check_max_results,
    decode_token,
    dry_run,
    encode_token,
)

# How long the owner still finds a deregistered image by its id (EC2: about an hour).
DESCRIBED_AFTER_DEREGISTER = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class DescribeImagesRequest:
    image_ids: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    executable_users: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    include_deprecated: bool = False
    include_disabled: bool = False
    max_results: int | None = None
    next_token: str | None = None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class DescribeImagesResult:
    images: tuple[ImageRecord, ...]
    next_token: str | None


def _users(caller: Caller, users: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for u in users:
        if u == "self":
            out.append(caller.account_id)
        elif u == "all" or ACCOUNT_RE.match(u):
            out.append(u)
        else:
            raise KilnError(errors.InvalidUserIDMalformed, f'Invalid user id: "{u}"')
    return tuple(out)


def describe_images(
    services: Services, caller: Caller, req: DescribeImagesRequest
) -> DescribeImagesResult:
    for image_id in req.image_ids:
        check_image_id(image_id)
    filters = check_filters(req.filters, IMAGE_FILTERS)
    check_max_results(req.max_results, 5, 1000)
    if req.max_results is not None and req.image_ids:
        raise KilnError(
            errors.InvalidParameterCombination,
            "The parameter ImageIds cannot be used with the parameter maxResults",
        )
    dry_run(req.dry_run)
    fingerprint = [
        "DescribeImages",
        caller.account_id,
        caller.region,
        req.image_ids,
        req.owners,
        req.executable_users,
        [(f.name, f.values) for f in filters],
        req.include_deprecated,
        req.include_disabled,
    ]
    after = decode_token(req.next_token, fingerprint)
    with services.catalog.read() as tx:
        # aliases (docs/aliases.md): asked by alias, an image answers with the alias as ImageId
        asked = {i: resolve_image_id(tx, caller, i) for i in dict.fromkeys(req.image_ids)}
        query = ImageQuery(
            region=caller.region,
            caller=caller.account_id,
            now=utc_now(),
            image_ids=tuple(dict.fromkeys(asked.values())),
            owners=resolve_owners(tx, caller, req.owners, services.amazon_images)
            if req.owners
            else (),
            executable_users=_users(caller, req.executable_users),
            filters=filters,
            include_deprecated=req.include_deprecated,
            include_disabled=req.include_disabled,
            after=str(after) if after is not None else None,
            limit=req.max_results + 1 if req.max_results else None,
            deregistered_after=ec2_time(datetime.now(UTC) - DESCRIBED_AFTER_DEREGISTER),
        )
        ids = query_image_ids(tx, query, services.catalog.dialect)
        if req.image_ids:
            _check_ids_exist(tx, query, ids, services.catalog.dialect)
        allowed = allowed_images.settings_of(tx, caller)
        if allowed.state == "disabled":
            token = None
            if req.max_results and len(ids) > req.max_results:
                ids = ids[: req.max_results]
                token = encode_token(ids[-1], fingerprint)
            images = cat.get_images(tx, ids, caller.account_id)
        else:
            images, token = _with_allowed(
                tx, services, caller, query, ids, req.max_results, allowed, fingerprint
            )
    if any(a != r for a, r in asked.items()):
        images = [
            replace(image, image_id=a)
            for image in images
            for a, r in asked.items()
            if r == image.image_id
        ]
    return DescribeImagesResult(tuple(images), token)


def _with_allowed(
    tx: Tx,
    services: Services,
    caller: Caller,
    query: ImageQuery,
    ids: list[str],
    max_results: int | None,
    settings: allowed_images.AllowedImagesSettings,
    fingerprint: list[object],
) -> tuple[list[ImageRecord], str | None]:
    """Allowed AMIs (docs/governance.md#allowed-amis): every image marked ``ImageAllowed``;
    in ``enabled`` state the others are left out, and a page is filled from further rows."""
    match = allowed_images.matcher(tx, caller, settings)
    hide = settings.state == "enabled"
    out: list[ImageRecord] = []
    batch = ids
    while True:
        for image in cat.get_images(tx, batch, caller.account_id):
            ok = match.allowed(image)
            if ok or not hide:
                out.append(replace(image, image_allowed=ok))
        if not hide or not max_results or len(out) > max_results or len(batch) <= max_results:
            break
        # a full page of rows was read but some were hidden: read on after the last row
        more = replace(query, after=batch[-1])
        batch = query_image_ids(tx, more, services.catalog.dialect)
        if not batch:
            break
    token = None
    if max_results and len(out) > max_results:
        out = out[:max_results]
        token = encode_token(out[-1].image_id, fingerprint)
    return out, token


def _check_ids_exist(tx: Tx, query: ImageQuery, found: list[str], dialect: str) -> None:
    """EC2 names every requested id the caller cannot see at all (filters aside)."""
    missing = [i for i in query.image_ids if i not in set(found)]
    if not missing:
        return
    bare = ImageQuery(
        region=query.region,
        caller=query.caller,
        now=query.now,
        image_ids=tuple(missing),
        include_deprecated=True,
        include_disabled=True,
        deregistered_after=query.deregistered_after,
    )
    seen = set(query_image_ids(tx, bare, dialect))
    unknown = [i for i in missing if i not in seen]
    if unknown:
        raise not_found(unknown)
