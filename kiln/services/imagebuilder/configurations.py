"""CreateDistributionConfiguration, CreateInfrastructureConfiguration
(docs/imagebuilder.md#configurations): where a build's image goes, what it builds on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kiln.builder.recipe import Distribution, RegionDistribution
from kiln.catalog.imagebuilder import IbResourceRecord
from kiln.catalog.records import utc_now
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.imagebuilder import arns

DISTRIBUTION = "distribution-configuration"
INFRASTRUCTURE = "infrastructure-configuration"


@dataclass(frozen=True, slots=True)
class CreateDistributionConfigurationRequest:
    name: str | None
    distributions: tuple[Mapping[str, object], ...]
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CreateInfrastructureConfigurationRequest:
    name: str | None
    instance_profile_name: str | None
    instance_types: tuple[str, ...] = ()
    key_pair: str | None = None
    terminate_instance_on_failure: bool = True
    security_group_ids: tuple[str, ...] = ()
    subnet_id: str | None = None
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    resource_tags: dict[str, str] = field(default_factory=dict)


def _map(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _strs(value: object) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def distribution_of(body: Mapping[str, object]) -> Distribution:
    """The build engine's distribution from a stored configuration."""
    regions: list[RegionDistribution] = []
    items = body.get("distributions")
    for d in items if isinstance(items, list) else []:
        ami = _map(_map(d).get("amiDistributionConfiguration"))
        perm = _map(ami.get("launchPermission"))
        tags = _map(ami.get("amiTags"))
        regions.append(
            RegionDistribution(
                str(_map(d).get("region")),
                str(ami["name"]) if ami.get("name") else None,
                str(ami["description"]) if ami.get("description") else None,
                {str(k): str(v) for k, v in tags.items()},
                str(ami["kmsKeyId"]) if ami.get("kmsKeyId") else None,
                _strs(perm.get("userIds")),
                "all" in _strs(perm.get("userGroups")),
                None,
            )
        )
    return Distribution(str(body["name"]), tuple(regions))


def create_distribution_configuration(
    services: Services, caller: Caller, req: CreateDistributionConfigurationRequest
) -> IbResourceRecord:
    name = arns.check_name(req.name)
    if not req.distributions:
        raise KilnError(
            arns.INVALID, "The value supplied for parameter 'distributions' is not valid."
        )
    for i, d in enumerate(req.distributions):
        region = d.get("region")
        if region not in services.regions:
            raise KilnError(
                arns.INVALID,
                f"The value supplied for parameter 'distributions[{i}].region' is not valid. "
                f"'{region}' is not a region this server serves.",
            )
        for member in (
            "containerDistributionConfiguration",
            "licenseConfigurationArns",
            "launchTemplateConfigurations",
            "fastLaunchConfigurations",
            "s3ExportConfiguration",
        ):
            if d.get(member):
                raise KilnError(
                    arns.INVALID,
                    f"The value supplied for parameter 'distributions[{i}].{member}' is not "
                    "valid. Kiln distributes AMIs only (docs/imagebuilder.md).",
                )
    the_arn = arns.arn(caller, DISTRIBUTION, name)
    now = utc_now()
    body: dict[str, object] = {
        "arn": the_arn,
        "name": name,
        "description": req.description,
        "distributions": [dict(d) for d in req.distributions],
        "timeoutMinutes": 720,
        "dateCreated": now,
        "tags": dict(req.tags),
    }
    return arns.add(services, caller, DISTRIBUTION, the_arn, name, "", "", body)


def create_infrastructure_configuration(
    services: Services, caller: Caller, req: CreateInfrastructureConfigurationRequest
) -> IbResourceRecord:
    name = arns.check_name(req.name)
    if not req.instance_profile_name:
        raise KilnError(
            arns.INVALID, "The value supplied for parameter 'instanceProfileName' is not valid."
        )
    the_arn = arns.arn(caller, INFRASTRUCTURE, name)
    body: dict[str, object] = {
        "arn": the_arn,
        "name": name,
        "description": req.description,
        "instanceTypes": list(req.instance_types),
        "instanceProfileName": req.instance_profile_name,
        "securityGroupIds": list(req.security_group_ids),
        "terminateInstanceOnFailure": req.terminate_instance_on_failure,
        "dateCreated": utc_now(),
        "tags": dict(req.tags),
        "resourceTags": dict(req.resource_tags),
    }
    if req.key_pair:
        body["keyPair"] = req.key_pair
    if req.subnet_id:
        body["subnetId"] = req.subnet_id
    return arns.add(services, caller, INFRASTRUCTURE, the_arn, name, "", "", body)
