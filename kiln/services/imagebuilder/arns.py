"""Image Builder ARNs as AWS forms them: ``arn:aws:imagebuilder:REGION:ACCOUNT:KIND/NAME[/x.y.z[/N]]``
(the name lowercased), and the look-ups every rule shares."""

from __future__ import annotations

import re

from kiln import errors
from kiln.catalog import imagebuilder as cat
from kiln.catalog.imagebuilder import IbResourceRecord
from kiln.errors import KilnError
from kiln.services.context import Caller, Services

NAME_RE = re.compile(r"^[-_A-Za-z0-9][-_A-Za-z0-9 ]{1,126}[-_A-Za-z0-9]$")
VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")
ARN_RE = re.compile(
    r"^arn:aws[^:]*:imagebuilder:(?P<region>[^:]+):(?P<account>[^:]+):"
    r"(?P<kind>[a-z-]+)/(?P<rest>.+)$"
)
INVALID = errors.ImagebuilderInvalidParameterValue


def arn(caller: Caller, kind: str, *parts: str) -> str:
    path = "/".join([parts[0].lower(), *parts[1:]])
    return f"arn:aws:imagebuilder:{caller.region}:{caller.account_id}:{kind}/{path}"


def check_name(name: str | None, member: str = "name") -> str:
    if not name or not NAME_RE.match(name):
        raise KilnError(
            INVALID,
            f"The value supplied for parameter '{member}' is not valid. Names are 3-128 letters, "
            "digits, hyphens, underscores and spaces.",
        )
    return name


def check_version(version: str | None) -> str:
    if not version or not VERSION_RE.match(version):
        raise KilnError(
            errors.ImagebuilderInvalidParameterValue,
            f"The value supplied for parameter 'semanticVersion' is not valid. "
            f"'{version}' is not a semantic version <major>.<minor>.<patch>.",
        )
    return version


def find(
    services: Services, caller: Caller, kind: str, value: str | None, member: str
) -> IbResourceRecord:
    """The caller's resource of ``kind`` with the ARN ``value`` (ResourceNotFoundException)."""
    m = ARN_RE.match(value or "")
    if m is None or m["kind"] != kind:
        raise KilnError(
            INVALID,
            f"The value supplied for parameter '{member}' is not valid. "
            f"'{value}' is not a {kind} ARN.",
        )
    with services.catalog.read() as tx:
        found = cat.get_resource(tx, str(value))
    if found is None or found.account_id != caller.account_id or found.region != caller.region:
        raise KilnError(
            errors.ImagebuilderResourceNotFound, f"The resource ARN '{value}' does not exist."
        )
    return found


def add(
    services: Services,
    caller: Caller,
    kind: str,
    the_arn: str,
    name: str,
    version: str,
    state: str,
    body: dict[str, object],
) -> IbResourceRecord:
    with services.catalog.write() as tx:
        if cat.get_resource(tx, the_arn) is not None:
            raise KilnError(
                errors.ImagebuilderResourceAlreadyExists,
                f"The resource ARN '{the_arn}' already exists.",
            )
        return cat.add_resource(
            tx,
            arn=the_arn,
            account_id=caller.account_id,
            region=caller.region,
            kind=kind,
            name=name,
            version=version,
            state=state,
            body=body,
        )
