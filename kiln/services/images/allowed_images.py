"""Allowed AMIs (docs/governance.md#allowed-amis): an account's criteria for the images it may
discover and launch in a region, in EC2's three states.

* ``disabled`` (the default): every image the account may see is allowed; DescribeImages leaves
  ``ImageAllowed`` out.
* ``audit-mode``: nothing is restricted; DescribeImages marks each image ``ImageAllowed``.
* ``enabled``: DescribeImages shows only allowed images and RunInstances refuses the others.

An image is allowed if the caller owns it (EC2 never restricts an account's own images) or it
matches at least one criterion; a criterion matches when every part it names matches. No
criteria: nothing but the caller's own images is allowed, as on EC2.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kiln import errors
from kiln.catalog import SYSTEM_ACCOUNT_ID, Tx
from kiln.catalog import accounts as cat_accounts
from kiln.catalog import governance as cat
from kiln.catalog.records import AccountSettingsRecord, ImageRecord
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.validate import ACCOUNT_RE, dry_run

STATES = ("enabled", "audit-mode")
#: ImageProviders keywords EC2 knows (besides 12-digit account ids).
PROVIDER_KEYWORDS = frozenset({"amazon", "aws-marketplace", "aws-backup-vault", "none"})
#: EC2's limits on a criteria document.
MAX_CRITERIA = 10
MAX_PROVIDERS = 200
MAX_VALUES = 50
IMAGE_NAME_RE = re.compile(r"^[A-Za-z0-9()\[\]./\-'@_*? ]{1,128}$")
PRODUCT_CODE_RE = re.compile(r"^[A-Za-z0-9]{1,25}$")
#: Criteria parts Kiln has nothing to match against (no watermarks, no Amazon Inspector).
UNSUPPORTED_PARTS = ("ImageWatermarks", "ScanResultCondition")


@dataclass(frozen=True, slots=True)
class ImageCriterion:
    """One criterion; an empty tuple or None means the part is not named."""

    image_providers: tuple[str, ...] = ()
    marketplace_product_codes: tuple[str, ...] = ()
    image_names: tuple[str, ...] = ()
    max_days_since_deprecated: int | None = None
    max_days_since_created: int | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.image_providers:
            out["ImageProviders"] = list(self.image_providers)
        if self.marketplace_product_codes:
            out["MarketplaceProductCodes"] = list(self.marketplace_product_codes)
        if self.image_names:
            out["ImageNames"] = list(self.image_names)
        if self.max_days_since_deprecated is not None:
            out["DeprecationTimeCondition"] = {
                "MaximumDaysSinceDeprecated": self.max_days_since_deprecated
            }
        if self.max_days_since_created is not None:
            out["CreationDateCondition"] = {"MaximumDaysSinceCreated": self.max_days_since_created}
        return out

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ImageCriterion:
        dep = doc.get("DeprecationTimeCondition") or {}
        made = doc.get("CreationDateCondition") or {}
        return cls(
            tuple(doc.get("ImageProviders") or ()),
            tuple(doc.get("MarketplaceProductCodes") or ()),
            tuple(doc.get("ImageNames") or ()),
            dep.get("MaximumDaysSinceDeprecated"),
            made.get("MaximumDaysSinceCreated"),
        )


@dataclass(frozen=True, slots=True)
class AllowedImagesSettings:
    state: str  # disabled | audit-mode | enabled
    criteria: tuple[ImageCriterion, ...]


def _bad(message: str) -> KilnError:
    return KilnError(errors.InvalidParameterValue, message)


def _strings(doc: Mapping[str, Any], member: str, i: int) -> tuple[str, ...]:
    value = doc.get(member)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"ImageCriteria.{i}.{member} must be a list of strings.")
    return tuple(value)


def _days(doc: Mapping[str, Any], member: str, inner: str, i: int) -> int | None:
    value = doc.get(member)
    if value is None:
        return None
    days = value.get(inner) if isinstance(value, Mapping) else None
    if not isinstance(days, int) or isinstance(days, bool) or days < 0:
        raise _bad(f"ImageCriteria.{i}.{member}.{inner} must be a whole number of days >= 0.")
    return days


def parse_criteria(criteria: Sequence[Mapping[str, Any]]) -> tuple[ImageCriterion, ...]:
    """ReplaceImageCriteriaInAllowedImagesSettings' ``ImageCriteria``, checked by EC2's rules.
    :raises KilnError: InvalidParameterValue naming the criterion and member."""
    if len(criteria) > MAX_CRITERIA:
        raise _bad(f"ImageCriteria can hold at most {MAX_CRITERIA} criteria ({len(criteria)}).")
    out = []
    for i, doc in enumerate(criteria, 1):
        for part in UNSUPPORTED_PARTS:
            if doc.get(part):
                raise _bad(f"ImageCriteria.{i}.{part} is not supported by Kiln.")
        providers = _strings(doc, "ImageProviders", i)
        if len(providers) > MAX_PROVIDERS:
            raise _bad(f"ImageCriteria.{i}.ImageProviders can hold at most {MAX_PROVIDERS}.")
        for p in providers:
            if p not in PROVIDER_KEYWORDS and not ACCOUNT_RE.match(p):
                raise _bad(
                    f"ImageCriteria.{i}.ImageProviders: '{p}' is not an account id or one of "
                    "amazon, aws-marketplace, aws-backup-vault, none."
                )
        if "none" in providers and len(providers) > 1:
            raise _bad(
                f"ImageCriteria.{i}.ImageProviders: none cannot be combined with other values."
            )
        codes = _strings(doc, "MarketplaceProductCodes", i)
        names = _strings(doc, "ImageNames", i)
        for member, values, pattern in (
            ("MarketplaceProductCodes", codes, PRODUCT_CODE_RE),
            ("ImageNames", names, IMAGE_NAME_RE),
        ):
            if len(values) > MAX_VALUES:
                raise _bad(f"ImageCriteria.{i}.{member} can hold at most {MAX_VALUES} values.")
            for v in values:
                if not pattern.match(v):
                    raise _bad(f"ImageCriteria.{i}.{member}: '{v}' is not a valid value.")
        criterion = ImageCriterion(
            providers,
            codes,
            names,
            _days(doc, "DeprecationTimeCondition", "MaximumDaysSinceDeprecated", i),
            _days(doc, "CreationDateCondition", "MaximumDaysSinceCreated", i),
        )
        if criterion == ImageCriterion():
            raise _bad(f"ImageCriteria.{i} names no criteria.")
        out.append(criterion)
    return tuple(out)


def _settings(record: AccountSettingsRecord) -> AllowedImagesSettings:
    return AllowedImagesSettings(
        record.allowed_images_state,
        tuple(ImageCriterion.from_json(c) for c in record.allowed_images_criteria),
    )


def settings_of(tx: Tx, caller: Caller) -> AllowedImagesSettings:
    return _settings(cat.get_settings(tx, caller.account_id, caller.region))


# --- matching ---------------------------------------------------------------------------------


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class Matcher:
    """Evaluates one account's criteria; ``verified`` are the accounts ``amazon`` names."""

    caller: str
    criteria: tuple[ImageCriterion, ...]
    verified: frozenset[str]
    now: datetime

    def _provider(self, p: str, image: ImageRecord) -> bool:
        if p == "amazon":
            return image.owner_id in self.verified
        if p == "aws-marketplace":
            return image.owner_alias == "aws-marketplace" or any(
                c.product_code_type == "marketplace" for c in image.product_codes
            )
        if p in ("aws-backup-vault", "none"):
            return False  # Kiln has no AWS Backup; none allows the caller's own images only
        return image.owner_id == p

    def _matches(self, c: ImageCriterion, image: ImageRecord) -> bool:
        if c.image_providers and not any(self._provider(p, image) for p in c.image_providers):
            return False
        if c.marketplace_product_codes and not any(
            pc.product_code_id in c.marketplace_product_codes for pc in image.product_codes
        ):
            return False
        if c.image_names and not any(
            fnmatch.fnmatchcase(image.name or "", n) for n in c.image_names
        ):
            return False
        if c.max_days_since_created is not None:
            made = _time(image.creation_date)
            if made is None or self.now - made > timedelta(days=c.max_days_since_created):
                return False
        if c.max_days_since_deprecated is not None:
            dep = _time(image.deprecation_time)
            if dep is not None and dep <= self.now:
                if self.now - dep > timedelta(days=c.max_days_since_deprecated):
                    return False
        return True

    def allowed(self, image: ImageRecord) -> bool:
        if image.owner_id == self.caller:
            return True
        return any(self._matches(c, image) for c in self.criteria)


def matcher(tx: Tx, caller: Caller, settings: AllowedImagesSettings) -> Matcher:
    verified = {SYSTEM_ACCOUNT_ID}
    verified |= {a.account_id for a in cat_accounts.list_accounts(tx) if _is_verified(a)}
    return Matcher(caller.account_id, settings.criteria, frozenset(verified), datetime.now(UTC))


def _is_verified(account: object) -> bool:
    """Accounts the operator verified (``kiln account verify``), when the catalog knows."""
    return bool(getattr(account, "verified", False))


def check_launch_allowed(tx: Tx, caller: Caller, image: ImageRecord) -> None:
    """RunInstances: in ``enabled`` state an image outside the criteria is refused.
    :raises KilnError: UnauthorizedOperation naming the image."""
    settings = settings_of(tx, caller)
    if settings.state != "enabled" or image.owner_id == caller.account_id:
        return
    if not matcher(tx, caller, settings).allowed(image):
        raise KilnError(
            errors.UnauthorizedOperation,
            f"You are not authorized to launch instances with this image: {image.image_id} "
            f"does not meet the Allowed AMIs criteria of account {caller.account_id} in "
            f"{caller.region}.",
        )


# --- the four actions -------------------------------------------------------------------------


def enable_allowed_images_settings(
    services: Services, caller: Caller, state: str, dry_run_flag: bool = False
) -> str:
    if state not in STATES:
        raise _bad(
            f"Value ({state}) for parameter AllowedImagesSettingsState is invalid. "
            "Valid values: enabled, audit-mode."
        )
    dry_run(dry_run_flag)
    with services.catalog.write() as tx:
        cat.update_settings(tx, caller.account_id, caller.region, {"allowed_images_state": state})
    return state


def disable_allowed_images_settings(
    services: Services, caller: Caller, dry_run_flag: bool = False
) -> str:
    dry_run(dry_run_flag)
    with services.catalog.write() as tx:
        cat.update_settings(
            tx, caller.account_id, caller.region, {"allowed_images_state": "disabled"}
        )
    return "disabled"


def get_allowed_images_settings(
    services: Services, caller: Caller, dry_run_flag: bool = False
) -> AllowedImagesSettings:
    dry_run(dry_run_flag)
    with services.catalog.read() as tx:
        return settings_of(tx, caller)


def replace_image_criteria_in_allowed_images_settings(
    services: Services,
    caller: Caller,
    criteria: Sequence[Mapping[str, Any]],
    dry_run_flag: bool = False,
) -> None:
    """Replace the account's criteria in the region (the state is left as it is)."""
    parsed = parse_criteria(criteria)
    dry_run(dry_run_flag)
    with services.catalog.write() as tx:
        cat.update_settings(
            tx,
            caller.account_id,
            caller.region,
            {"allowed_images_criteria": [c.as_json() for c in parsed]},
        )
