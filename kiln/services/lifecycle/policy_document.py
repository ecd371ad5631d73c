"""A lifecycle policy document: Image Builder's CreateLifecyclePolicy request, as JSON or YAML.

The document is checked against botocore's ``CreateLifecyclePolicyRequest`` shape (the same
model the Image Builder API will speak): types, enums, ``min``/``max``, required members, and
(unlike the API, which ignores them) members the shape does not have, so that a typo such as
``retainAtleast`` is refused instead of silently ignored. Every refusal is one
``InvalidParameterValueException`` naming the field (``policyDetails.1.filter.value``).

Kiln's extension (docs/lifecycle.md#selecting-images): ``resourceSelection.families`` (image
families, docs/aliases.md#families) and ``resourceSelection.namePrefixes``. They are taken out
of the document before it is checked and stored beside it, so the stored document is exactly
Image Builder's shape. ``executionRole`` and ``clientToken`` may be left out (Kiln runs a
policy as its account; a file needs no idempotency token).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any

import yaml
from botocore.model import Shape

from kiln import errors
from kiln.aws.bounds import Limits
from kiln.aws.json import JsonReader
from kiln.aws.model import load_model
from kiln.errors import KilnError
from kiln.services.images.families import is_family

IMAGEBUILDER_VERSION = "2019-12-02"
OPERATION = "CreateLifecyclePolicy"
INVALID = errors.ImagebuilderInvalidParameterValue
#: ResourceName in botocore's model (JsonReader checks lengths and enums, not patterns).
NAME_RE = re.compile(r"^[-_A-Za-z-0-9][-_A-Za-z0-9 ]{1,126}[-_A-Za-z-0-9]$")
MAX_PREFIX = 128
#: Members a file may leave out that the API requires.
DEFAULTED = {"executionRole": "kiln", "clientToken": "kiln"}
#: Request members that are not part of the stored policy.
NOT_STORED = ("clientToken", "dryRun")
EXTENSION = ("families", "namePrefixes")
DAYS = {"DAYS": 1, "WEEKS": 7, "MONTHS": 30, "YEARS": 365}


@dataclass(frozen=True, slots=True)
class Period:
    value: int
    unit: str  # DAYS | WEEKS | MONTHS | YEARS

    @property
    def days(self) -> int:
        return self.value * DAYS[self.unit]


@dataclass(frozen=True, slots=True)
class Exclusions:
    """exclusionRules: images any of these match are left alone by the detail."""

    tags: tuple[tuple[str, str], ...] = ()  # exclusionRules.tagMap and .amis.tagMap
    is_public: bool = False
    regions: tuple[str, ...] = ()
    shared_accounts: tuple[str, ...] = ()
    last_launched: Period | None = None


@dataclass(frozen=True, slots=True)
class PolicyDetail:
    action: str  # DEPRECATE | DISABLE | DELETE
    delete_snapshots: bool
    filter_type: str  # AGE | COUNT
    value: int
    unit: str | None
    retain_at_least: int | None
    exclusions: Exclusions


@dataclass(frozen=True, slots=True)
class Selection:
    """Which of the account's images the policy looks at (docs/lifecycle.md#selecting-images)."""

    families: tuple[str, ...] = ()
    name_prefixes: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    name: str
    status: str  # ENABLED | DISABLED
    details: tuple[PolicyDetail, ...]
    selection: Selection
    #: The Image Builder members as stored (botocore's shape, no extension).
    stored: dict[str, Any]
    #: Kiln's extension as stored: {"families": [...], "namePrefixes": [...]}.
    extension: dict[str, Any]


def _invalid(path: str, message: str) -> KilnError:
    return KilnError(INVALID, f"{path}: {message}")


def load_text(text: str) -> object:
    """A policy file's text as a value: JSON, or YAML (of which JSON is nearly a subset)."""
    stripped = text.lstrip()
    try:
        if stripped.startswith("{"):
            return json.loads(text)
        return yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        first = " ".join(str(e).split())[:200]
        raise KilnError(INVALID, f"the policy is neither valid JSON nor YAML: {first}") from None


def _request_shape() -> Shape:
    shape = load_model("imagebuilder", IMAGEBUILDER_VERSION).operation_model(OPERATION).input_shape
    assert shape is not None
    return shape


def _unknown_members(shape: Shape, value: object, path: str) -> None:
    """Refuse a member ``shape`` does not have (the API ignores them; a file should not)."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            member = shape.members.get(str(key))
            if member is None:
                raise _invalid(where, f"unknown field (not a member of {shape.name})")
            _unknown_members(member, item, where)
    elif kind == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            _unknown_members(shape.member, item, f"{path}.{i + 1}")


def _take_extension(document: dict[str, Any]) -> dict[str, Any]:
    selection = document.get("resourceSelection")
    if not isinstance(selection, dict):
        return {}
    found: dict[str, Any] = {}
    for key in EXTENSION:
        if key not in selection:
            continue
        value = selection.pop(key)
        path = f"resourceSelection.{key}"
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _invalid(path, "must be a list of strings")
        if len(value) > 50:
            raise _invalid(path, "at most 50 entries")
        for v in value:
            if key == "families" and not is_family(v):
                raise _invalid(path, f"{v!r} is not an image family (docs/aliases.md#families)")
            if key == "namePrefixes" and not 1 <= len(v) <= MAX_PREFIX:
                raise _invalid(path, f"a name prefix has 1 to {MAX_PREFIX} characters")
        found[key] = list(dict.fromkeys(value))
    return found


def _tags(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in value.items()))


def _detail(item: dict[str, Any], path: str) -> PolicyDetail:
    action = item["action"]
    include = action.get("includeResources", {})
    if include.get("containers"):
        raise _invalid(
            f"{path}.action.includeResources.containers",
            "Kiln has no container images; only AMI_IMAGE policies",
        )
    if include.get("amis") is False:
        raise _invalid(
            f"{path}.action.includeResources.amis",
            "an AMI_IMAGE policy acts on the AMIs; false is not supported",
        )
    filt = item["filter"]
    if filt["type"] == "AGE" and "unit" not in filt:
        raise _invalid(f"{path}.filter.unit", "an AGE filter needs a unit")
    if filt["type"] == "COUNT" and "unit" in filt:
        raise _invalid(f"{path}.filter.unit", "a COUNT filter has no unit (it counts images)")
    rules = item.get("exclusionRules", {})
    amis = rules.get("amis", {})
    last = amis.get("lastLaunched")
    exclusions = Exclusions(
        tags=tuple(sorted(set(_tags(rules.get("tagMap")) + _tags(amis.get("tagMap"))))),
        is_public=bool(amis.get("isPublic", False)),
        regions=tuple(amis.get("regions", ())),
        shared_accounts=tuple(amis.get("sharedAccounts", ())),
        last_launched=Period(last["value"], last["unit"]) if last else None,
    )
    return PolicyDetail(
        action=action["type"],
        delete_snapshots=bool(include.get("snapshots", False)),
        filter_type=filt["type"],
        value=filt["value"],
        unit=filt.get("unit"),
        retain_at_least=filt.get("retainAtLeast"),
        exclusions=exclusions,
    )


def parse_policy(value: object) -> PolicyDocument:
    """``value`` (a loaded JSON or YAML document) as a checked policy.

    :raises KilnError: InvalidParameterValueException naming the field at fault."""
    if not isinstance(value, dict):
        raise KilnError(INVALID, "the policy must be a JSON or YAML object (a mapping)")
    document = copy.deepcopy(value)
    extension = _take_extension(document)
    shape = _request_shape()
    _unknown_members(shape, document, "")
    reader = JsonReader(Limits(invalid=INVALID, check_min=True), malformed=INVALID)
    checked = reader.structure(shape, {**DEFAULTED, **document}, "")
    name = str(checked["name"])
    if not NAME_RE.match(name):
        raise _invalid(
            "name", "3 to 128 letters, digits, '-', '_' or spaces, not starting or ending in one"
        )
    if checked["resourceType"] != "AMI_IMAGE":
        raise _invalid("resourceType", "Kiln has no container images; use AMI_IMAGE")
    selection = checked["resourceSelection"]
    assert isinstance(selection, dict)
    if "recipes" in selection:
        raise _invalid(
            "resourceSelection.recipes",
            "Kiln has no Image Builder recipes; select images by families, namePrefixes or tagMap",
        )
    sel = Selection(
        families=tuple(extension.get("families", ())),
        name_prefixes=tuple(extension.get("namePrefixes", ())),
        tags=_tags(selection.get("tagMap")),
    )
    if not (sel.families or sel.name_prefixes or sel.tags):
        raise _invalid(
            "resourceSelection", "name the images: families, namePrefixes or tagMap (one at least)"
        )
    items = checked["policyDetails"]
    assert isinstance(items, list)
    details = tuple(_detail(item, f"policyDetails.{n + 1}") for n, item in enumerate(items))
    seen: set[str] = set()
    for n, d in enumerate(details):
        if d.action in seen:
            raise _invalid(
                f"policyDetails.{n + 1}.action.type", f"{d.action} appears twice; one rule each"
            )
        seen.add(d.action)
    stored = {k: v for k, v in document.items() if k not in NOT_STORED}
    return PolicyDocument(
        name=name,
        status=str(checked.get("status", "ENABLED")),
        details=details,
        selection=sel,
        stored=stored,
        extension=extension,
    )


def stored_policy(document: dict[str, Any], extension: dict[str, Any]) -> PolicyDocument:
    """A policy read back from the catalog (its document was checked when it was applied)."""
    value = copy.deepcopy(document)
    if extension:
        value.setdefault("resourceSelection", {}).update(extension)
    return parse_policy(value)
