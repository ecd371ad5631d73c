"""CreateComponent, GetComponent, ListComponents: component documents (docs/imagebuilder.md#components).

The ``data`` is the component YAML that ``kiln build`` reads (docs/builds.md#components), parsed
and checked whole when it is created: a refusal names ``data``, the line and the field."""

from __future__ import annotations

from dataclasses import dataclass, field

from kiln import errors
from kiln.builder.component import Component, parse_component
from kiln.builder.recipe import BUILTIN_DIR, BUILTIN_PREFIX, builtin_components
from kiln.catalog import imagebuilder as cat
from kiln.catalog.imagebuilder import IbResourceRecord
from kiln.catalog.records import utc_now
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.imagebuilder import arns

KIND = "component"


@dataclass(frozen=True, slots=True)
class CreateComponentRequest:
    name: str | None
    semantic_version: str | None
    platform: str | None
    data: str | None
    uri: str | None = None
    description: str = ""
    change_description: str = ""
    kms_key_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    supported_os_versions: tuple[str, ...] = ()


def _parameters(component: Component) -> list[dict[str, object]]:
    return [
        {
            "name": p.name,
            "type": "String",
            **({"defaultValue": [p.default]} if p.default is not None else {}),
            "description": p.description,
        }
        for p in component.parameters
    ]


def parsed(record: IbResourceRecord) -> Component:
    """The stored component's document (checked when it was created)."""
    return parse_component(str(record.body["data"]), record.name)


def create_component(
    services: Services, caller: Caller, req: CreateComponentRequest
) -> IbResourceRecord:
    name = arns.check_name(req.name)
    version = arns.check_version(req.semantic_version)
    if req.platform != "Linux":
        raise KilnError(
            arns.INVALID,
            f"The value supplied for parameter 'platform' is not valid. Kiln builds Linux "
            f"images only, not {req.platform}.",
        )
    if req.uri:
        raise KilnError(
            arns.INVALID,
            "The value supplied for parameter 'uri' is not valid. Give the document as 'data' "
            "(Kiln does not read S3 URIs for components).",
        )
    if not req.data:
        raise KilnError(
            errors.ImagebuilderInvalidRequest, "You must specify either 'data' or 'uri'."
        )
    component = parse_component(req.data, "data")
    the_arn = arns.arn(caller, KIND, name, version, "1")
    body: dict[str, object] = {
        "arn": the_arn,
        "name": name,
        "version": version,
        "description": req.description,
        "changeDescription": req.change_description,
        "type": "TEST" if [p.name for p in component.phases] == ["test"] else "BUILD",
        "platform": "Linux",
        "supportedOsVersions": list(req.supported_os_versions),
        "state": {"status": "ACTIVE"},
        "parameters": _parameters(component),
        "owner": caller.account_id,
        "data": req.data,
        "encrypted": False,
        "dateCreated": utc_now(),
        "tags": dict(req.tags),
    }
    if req.kms_key_id:
        body |= {"kmsKeyId": req.kms_key_id, "encrypted": True}
    return arns.add(services, caller, KIND, the_arn, name, version, "ACTIVE", body)


def get_component(
    services: Services, caller: Caller, component_arn: str | None
) -> IbResourceRecord:
    found = _shipped_by_arn(caller, component_arn)
    if found is not None:
        return found
    return arns.find(services, caller, KIND, component_arn, "componentBuildVersionArn")


def list_components(
    services: Services, caller: Caller, owner: str | None
) -> list[IbResourceRecord]:
    """The caller's components (``owner`` Self), or the components Kiln ships (``Amazon``);
    Shared and ThirdParty own none here."""
    if owner == "Amazon":
        return shipped(caller)
    if owner not in (None, "Self"):
        return []
    with services.catalog.read() as tx:
        return cat.list_resources(tx, caller.account_id, caller.region, KIND)


def resolve_component(
    services: Services, caller: Caller, value: str | None, member: str
) -> IbResourceRecord:
    """A recipe's ``componentArn``: a build version (``…/x.y.z/1``) or a version (``…/x.y.z``:
    its newest build)."""
    ship = _shipped_by_arn(caller, value)
    if ship is not None:
        return ship
    m = arns.ARN_RE.match(value or "")
    if m is not None and m["kind"] == KIND and m["rest"].count("/") == 1:
        name, version = m["rest"].split("/")
        with services.catalog.read() as tx:
            found = [
                r
                for r in cat.list_resources(tx, caller.account_id, caller.region, KIND)
                if r.name.lower() == name and r.version == version
            ]
        if found:
            return found[-1]
    return arns.find(services, caller, KIND, value, member)


SHIPPED_VERSION = "1.0.0"


def shipped(caller: Caller) -> list[IbResourceRecord]:
    """The components Kiln ships (docs/builds.md: ``kiln:harden-ssh`` …) as Amazon-managed
    components ``arn:aws:imagebuilder:REGION:aws:component/kiln-NAME/1.0.0/1``."""
    out: list[IbResourceRecord] = []
    for name in builtin_components():
        short = name.removeprefix(BUILTIN_PREFIX)
        data = (BUILTIN_DIR / f"{short}.yaml").read_text()
        component = parse_component(data, name)
        the_arn = (
            f"arn:aws:imagebuilder:{caller.region}:aws:component/kiln-{short}/{SHIPPED_VERSION}/1"
        )
        body: dict[str, object] = {
            "arn": the_arn,
            "name": f"kiln-{short}",
            "version": SHIPPED_VERSION,
            "description": component.description,
            "type": "BUILD",
            "platform": "Linux",
            "state": {"status": "ACTIVE"},
            "parameters": _parameters(component),
            "owner": "Amazon",
            "data": data,
            "encrypted": False,
            "dateCreated": "2026-12-04T00:00:00.000Z",
            "tags": {},
        }
        out.append(
            IbResourceRecord(
                the_arn,
                "aws",
                caller.region,
                KIND,
                name,
                SHIPPED_VERSION,
                "ACTIVE",
                body,
                [],
                str(body["dateCreated"]),
            )
        )
    return out


def _shipped_by_arn(caller: Caller, value: str | None) -> IbResourceRecord | None:
    """A shipped component by its build-version ARN, its version's, or ``x.x.x``."""
    m = arns.ARN_RE.match(value or "")
    if m is None or m["account"] != "aws" or m["kind"] != KIND:
        return None
    parts = m["rest"].split("/")
    for record in shipped(caller):
        if (
            m["region"] == caller.region
            and parts[0] == str(record.body["name"])
            and parts[1:] in (["x.x.x"], [SHIPPED_VERSION], [SHIPPED_VERSION, "1"], ["1.x.x"])
        ):
            return record
    raise KilnError(
        errors.ImagebuilderResourceNotFound, f"The resource ARN '{value}' does not exist."
    )
