"""Image recipes and distribution configurations (Image Builder's fields, YAML or JSON), parsed
with their lines. A recipe's components are files beside it or Kiln's own (``kiln:NAME``,
kiln/builder/components/). docs/builds.md#recipes is the contract."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from kiln.builder.component import Component, bind, load_component, parse_component
from kiln.builder.yamlnodes import Where, compose, field, integer, mapping, plain, sequence, text

RECIPE_KEYS = frozenset(
    {
        "name",
        "description",
        "semanticVersion",
        "parentImage",
        "components",
        "blockDeviceMappings",
        "instanceType",
        "tags",
    }
)
COMPONENT_KEYS = frozenset({"name", "parameters"})
DEVICE_KEYS = frozenset({"deviceName", "ebs"})
EBS_KEYS = frozenset({"volumeSize", "volumeType", "deleteOnTermination"})
VOLUME_TYPES = ("gp2", "gp3", "io1", "io2", "st1", "sc1", "standard")
RECIPE_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,125}$")
VERSION_RE = re.compile(r"^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$")
#: A parent's version filter: x.y.z where each part may be ``x`` (any), left to right.
WILDCARD_RE = re.compile(r"^([0-9]+|x)\.([0-9]+|x)\.([0-9]+|x)$")
DEVICE_RE = re.compile(r"^/dev/(sd[a-z]|xvd[a-z]|vd[a-z])$")
BUILTIN_PREFIX = "kiln:"
BUILTIN_DIR = Path(__file__).parent / "components"
DIST_KEYS = frozenset({"name", "description", "distributions"})
REGION_KEYS = frozenset({"region", "amiDistributionConfiguration"})
AMI_KEYS = frozenset(
    {"name", "description", "amiTags", "kmsKeyId", "launchPermission", "deprecationTime"}
)
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
ACCOUNT_RE = re.compile(r"^[0-9]{12}$")


@dataclass(frozen=True, slots=True)
class RecipeComponent:
    component: Component
    parameters: dict[str, str]  # bound: the recipe's values over the defaults


@dataclass(frozen=True, slots=True)
class BlockDevice:
    device_name: str
    volume_size: int | None
    volume_type: str | None
    delete_on_termination: bool


@dataclass(frozen=True, slots=True)
class Recipe:
    name: str
    description: str
    version: str  # x.y.z
    parent: str  # an image id, a name, a family, or RECIPE/x.y.z with wildcards (docs/builds.md)
    components: tuple[RecipeComponent, ...]
    block_devices: tuple[BlockDevice, ...]
    instance_type: str
    tags: dict[str, str]
    file: str


@dataclass(frozen=True, slots=True)
class RegionDistribution:
    region: str
    name: str | None  # the image's name there (default: the build's)
    description: str | None
    tags: dict[str, str]
    kms_key_id: str | None
    share_with: tuple[str, ...]  # account ids
    public: bool  # launchPermission.userGroups: [all]
    deprecation_time: str | None  # ISO 8601


@dataclass(frozen=True, slots=True)
class Distribution:
    name: str
    regions: tuple[RegionDistribution, ...]


def builtin_components() -> list[str]:
    return sorted(BUILTIN_PREFIX + p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def load_recipe(path: Path) -> Recipe:
    return parse_recipe(path.read_text(), str(path), path.parent)


def parse_recipe(source: str, file: str, base: Path) -> Recipe:
    """The recipe in ``source``; its components are read (``base``: the directory relative
    paths start from) and their parameters bound. Every refusal names file, line and field."""
    root, where = compose(source, file)
    top = mapping(
        root, where, RECIPE_KEYS, ("name", "semanticVersion", "parentImage", "components")
    )
    name = text(top["name"], field(where, top["name"], "name"))
    if not RECIPE_NAME_RE.match(name):
        raise field(where, top["name"], "name").fail(
            "a recipe name is letters, digits, '-' and '_' (at most 126)"
        )
    vw = field(where, top["semanticVersion"], "semanticVersion")
    version = str(plain(top["semanticVersion"], vw))
    if not VERSION_RE.match(version):
        raise vw.fail(f"{version} is not a semantic version x.y.z (three numbers)")
    pw = field(where, top["parentImage"], "parentImage")
    parent = text(top["parentImage"], pw)
    check_parent(parent, pw)
    description = ""
    if "description" in top:
        description = text(top["description"], field(where, top["description"], "description"))
    components = tuple(
        _component(node, where.at(node, f"components[{i}]"), base)
        for i, node in enumerate(
            sequence(top["components"], field(where, top["components"], "components"))
        )
    )
    if not components:
        raise field(where, top["components"], "components").fail(
            "a recipe has at least one component"
        )
    devices: tuple[BlockDevice, ...] = ()
    if "blockDeviceMappings" in top:
        bw = field(where, top["blockDeviceMappings"], "blockDeviceMappings")
        devices = tuple(
            _device(n, bw.at(n, f"blockDeviceMappings[{i}]"))
            for i, n in enumerate(sequence(top["blockDeviceMappings"], bw))
        )
    instance_type = "t2.micro"
    if "instanceType" in top:
        instance_type = text(top["instanceType"], field(where, top["instanceType"], "instanceType"))
    tags = _tags(top["tags"], field(where, top["tags"], "tags")) if "tags" in top else {}
    return Recipe(
        name, description, version, parent, components, devices, instance_type, tags, file
    )


def check_parent(parent: str, where: Where) -> None:
    """A version filter's ``x`` parts come after its numbers (``1.x.x``, never ``x.1.x``)."""
    last = parent.rsplit("/", 1)[-1]
    if "/" in parent and WILDCARD_RE.match(last) and "x" in last.split("."):
        parts = last.split(".")
        if any(p != "x" for p in parts[parts.index("x") :]):
            raise where.fail("in a version filter, x parts come after the numbers (1.x.x)")


def version_matches(pattern: str, version: str) -> bool:
    """``1.x.x`` matches 1.2.3; ``x.x.x`` matches every version."""
    return all(p in ("x", v) for p, v in zip(pattern.split("."), version.split("."), strict=True))


def _component(node: yaml.Node, where: Where, base: Path) -> RecipeComponent:
    body = mapping(node, where, COMPONENT_KEYS, ("name",))
    nw = field(where, body["name"], "name")
    ref = text(body["name"], nw)
    if ref.startswith(BUILTIN_PREFIX):
        path = BUILTIN_DIR / f"{ref[len(BUILTIN_PREFIX) :]}.yaml"
        if not re.match(r"^[a-z0-9-]+$", ref[len(BUILTIN_PREFIX) :]) or not path.exists():
            raise nw.fail(f"no component {ref} ships with Kiln ({', '.join(builtin_components())})")
        component = parse_component(path.read_text(), ref)
    else:
        path = (base / ref).resolve()
        if not path.is_file():
            raise nw.fail(f"no component file {path} (a path relative to the recipe, or kiln:NAME)")
        component = load_component(path)
    given: dict[str, str] = {}
    if "parameters" in body:
        paw = field(where, body["parameters"], "parameters")
        for i, item in enumerate(sequence(body["parameters"], paw)):
            iw = paw.at(item, f"{paw.field}[{i}]")
            p = mapping(item, iw, frozenset({"name", "value"}), ("name", "value"))
            pname = text(p["name"], field(iw, p["name"], "name"))
            value = plain(p["value"], field(iw, p["value"], "value"))
            # Image Builder's value is a list of one string; a plain string is accepted too.
            if isinstance(value, list) and len(value) == 1:
                value = value[0]
            if isinstance(value, list | dict) or value is None:
                raise field(iw, p["value"], "value").fail("a parameter's value is one string")
            given[pname] = str(value)
        where = paw
    return RecipeComponent(component, bind(component, given, where))


def _device(node: yaml.Node, where: Where) -> BlockDevice:
    body = mapping(node, where, DEVICE_KEYS, ("deviceName",))
    dw = field(where, body["deviceName"], "deviceName")
    device = text(body["deviceName"], dw)
    if not DEVICE_RE.match(device):
        raise dw.fail("a device name is /dev/sdX, /dev/xvdX or /dev/vdX")
    size, vtype, delete = None, None, True
    if "ebs" in body:
        ew = field(where, body["ebs"], "ebs")
        ebs = mapping(body["ebs"], ew, EBS_KEYS)
        if "volumeSize" in ebs:
            size = integer(ebs["volumeSize"], field(ew, ebs["volumeSize"], "volumeSize"), 1, 16384)
        if "volumeType" in ebs:
            tw = field(ew, ebs["volumeType"], "volumeType")
            vtype = text(ebs["volumeType"], tw)
            if vtype not in VOLUME_TYPES:
                raise tw.fail(f"volumeType is one of {', '.join(VOLUME_TYPES)}")
        if "deleteOnTermination" in ebs:
            xw = field(ew, ebs["deleteOnTermination"], "deleteOnTermination")
            flag = plain(ebs["deleteOnTermination"], xw)
            if not isinstance(flag, bool):
                raise xw.fail("true or false")
            delete = flag
    return BlockDevice(device, size, vtype, delete)


def _tags(node: yaml.Node, where: Where) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in mapping(node, where).items():
        tw = field(where, value, key)
        if not 1 <= len(key) <= 128 or key.startswith("aws:"):
            raise tw.fail("a tag key is 1 to 128 characters, not starting with aws:")
        v = plain(value, tw)
        if isinstance(v, list | dict) or v is None or len(str(v)) > 256:
            raise tw.fail("a tag value is a string of at most 256 characters")
        out[key] = str(v)
    return out


def load_distribution(path: Path) -> Distribution:
    return parse_distribution(path.read_text(), str(path))


def parse_distribution(source: str, file: str) -> Distribution:
    """A distribution configuration: per region, the image's name, tags, KMS key, the
    accounts to share with and a deprecation time."""
    root, where = compose(source, file)
    top = mapping(root, where, DIST_KEYS, ("distributions",))
    name = (
        text(top["name"], field(where, top["name"], "name")) if "name" in top else Path(file).stem
    )
    dw = field(where, top["distributions"], "distributions")
    regions: list[RegionDistribution] = []
    for i, node in enumerate(sequence(top["distributions"], dw)):
        rw = dw.at(node, f"distributions[{i}]")
        body = mapping(node, rw, REGION_KEYS, ("region",))
        gw = field(rw, body["region"], "region")
        region = text(body["region"], gw)
        if not REGION_RE.match(region):
            raise gw.fail(f"{region} is not a region name")
        if any(r.region == region for r in regions):
            raise gw.fail(f"region {region} appears twice")
        regions.append(_region(region, body.get("amiDistributionConfiguration"), rw))
    if not regions:
        raise dw.fail("a distribution names at least one region")
    return Distribution(name, tuple(regions))


def _region(region: str, node: yaml.Node | None, where: Where) -> RegionDistribution:
    if node is None:
        return RegionDistribution(region, None, None, {}, None, (), False, None)
    aw = field(where, node, "amiDistributionConfiguration")
    ami = mapping(node, aw, AMI_KEYS)
    name = text(ami["name"], field(aw, ami["name"], "name")) if "name" in ami else None
    desc = (
        text(ami["description"], field(aw, ami["description"], "description"))
        if ("description" in ami)
        else None
    )
    tags = _tags(ami["amiTags"], field(aw, ami["amiTags"], "amiTags")) if "amiTags" in ami else {}
    kms = (
        text(ami["kmsKeyId"], field(aw, ami["kmsKeyId"], "kmsKeyId")) if "kmsKeyId" in ami else None
    )
    share: list[str] = []
    public = False
    if "launchPermission" in ami:
        lw = field(aw, ami["launchPermission"], "launchPermission")
        perm = mapping(ami["launchPermission"], lw, frozenset({"userIds", "userGroups"}))
        if "userIds" in perm:
            uw = field(lw, perm["userIds"], "userIds")
            for item in sequence(perm["userIds"], uw):
                account = text(item, uw)
                if not ACCOUNT_RE.match(account):
                    raise uw.fail(f"{account} is not a 12-digit account id")
                share.append(account)
        if "userGroups" in perm:
            gw = field(lw, perm["userGroups"], "userGroups")
            groups = [text(g, gw) for g in sequence(perm["userGroups"], gw)]
            if any(g != "all" for g in groups):
                raise gw.fail("the only user group is all")
            public = bool(groups)
    deprecation = None
    if "deprecationTime" in ami:
        xw = field(aw, ami["deprecationTime"], "deprecationTime")
        deprecation = str(plain(ami["deprecationTime"], xw))
        try:
            datetime.fromisoformat(deprecation.replace("Z", "+00:00"))
        except ValueError:
            raise xw.fail(f"{deprecation} is not an ISO 8601 date or time") from None
    return RegionDistribution(region, name, desc, tags, kms, tuple(share), public, deprecation)
