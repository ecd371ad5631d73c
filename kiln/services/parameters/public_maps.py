"""The operator's maps of AWS's public parameter names to image families (``kiln parameter
map|unmap|maps``; docs/ssm.md#public-parameters). A map holds in every region: the family's
newest image there is the answer."""

from __future__ import annotations

from dataclasses import dataclass

from kiln import errors
from kiln.catalog import SYSTEM_ACCOUNT_ID
from kiln.catalog import aliases as cat
from kiln.catalog.records import PublicParameterRecord
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.images.families import is_family, newest_image
from kiln.services.parameters.names import check_name
from kiln.services.parameters.public import AWS_PREFIX


@dataclass(frozen=True, slots=True)
class MappedParameter:
    name: str
    family: str
    #: region -> the image id the name answers with now (regions without one are absent)
    images: dict[str, str]


def _check(name: str) -> None:
    check_name(name)
    if not name.startswith(AWS_PREFIX) or name == AWS_PREFIX:
        raise KilnError(
            errors.ValidationException,
            f"{name!r}: only names under {AWS_PREFIX} are mapped (Kiln's own are "
            "/kiln/service/<family>/latest)",
        )


def map_parameter(services: Services, name: str, family: str) -> PublicParameterRecord:
    _check(name)
    if not is_family(family):
        raise KilnError(
            errors.ValidationException, f"{family!r} is not an image family (such as kiln/debian)"
        )
    with services.catalog.write() as tx:
        return cat.set_public_parameter(tx, name, family)


def unmap_parameter(services: Services, name: str) -> None:
    _check(name)
    with services.catalog.write() as tx:
        if not cat.delete_public_parameter(tx, name):
            raise KilnError(errors.ParameterNotFound, f"Parameter {name} is not mapped.")


def mapped_parameters(services: Services) -> list[MappedParameter]:
    out = []
    with services.catalog.read() as tx:
        for m in cat.list_public_parameters(tx):
            images = {}
            for region in services.regions:
                found = newest_image(tx, Caller(SYSTEM_ACCOUNT_ID, region), m.family)
                if found:
                    images[region] = found
            out.append(MappedParameter(m.name, m.family, images))
    return out
