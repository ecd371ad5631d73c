"""Public parameters: names every account reads and none writes (docs/ssm.md#public-parameters).

* ``/kiln/service/<family>/latest``: the id of the newest available image of ``<family>`` in
  the caller's region (kiln/services/images/families.py), computed at every read, so it is
  never stale: ``/kiln/service/kiln/debian/latest``.
* names under ``/aws/`` that the operator maps to a family (``kiln parameter map
  /aws/service/debian/release/12/latest/amd64 kiln/debian``), answering the same way.

A public parameter whose family has no image does not exist (ParameterNotFound). It is a
``String`` of DataType ``aws:ec2:image``, always version 1, modified when its image was made.
"""

from __future__ import annotations

from kiln.catalog import Tx
from kiln.catalog import aliases as cat
from kiln.catalog import images as cat_images
from kiln.catalog.records import ParameterRecord
from kiln.services.context import Caller
from kiln.services.images.families import families, is_family, newest_image

KILN_SERVICE = "/kiln/service/"
LATEST = "/latest"
AWS_PREFIX = "/aws/"


def kiln_name(family: str) -> str:
    return f"{KILN_SERVICE}{family}{LATEST}"


def is_public_name(name: str) -> bool:
    low = name.lower()
    return low.startswith(AWS_PREFIX) or low.startswith("/kiln/")


def _family_of(tx: Tx, name: str) -> str | None:
    if name.startswith(KILN_SERVICE) and name.endswith(LATEST):
        family = name[len(KILN_SERVICE) : -len(LATEST)]
        return family if is_family(family) else None
    if name.startswith(AWS_PREFIX):
        mapped = cat.get_public_parameter(tx, name)
        return mapped.family if mapped else None
    return None


def _record(tx: Tx, caller: Caller, name: str, family: str) -> ParameterRecord | None:
    image_id = newest_image(tx, caller, family)
    image = cat_images.get_image(tx, image_id, caller.account_id) if image_id else None
    if image is None:
        return None
    return ParameterRecord(
        account_id="",
        region=caller.region,
        name=name,
        version=1,
        type="String",
        value=image.image_id,
        sealed=None,
        description=f"The newest image of the family {family}",
        key_id=None,
        allowed_pattern=None,
        tier="Standard",
        data_type="aws:ec2:image",
        modified=image.creation_date,
        modified_user="",
    )


def public_parameter(tx: Tx, caller: Caller, name: str) -> ParameterRecord | None:
    """The public parameter ``name`` as the caller reads it now, or None."""
    family = _family_of(tx, name)
    return _record(tx, caller, name, family) if family is not None else None


def public_parameters(tx: Tx, caller: Caller) -> list[ParameterRecord]:
    """Every public parameter that exists for the caller now, by name."""
    out = []
    for family in families(tx, caller):
        rec = _record(tx, caller, kiln_name(family), family)
        if rec is not None:
            out.append(rec)
    for mapped in cat.list_public_parameters(tx):
        rec = _record(tx, caller, mapped.name, mapped.family)
        if rec is not None:
            out.append(rec)
    return sorted(out, key=lambda r: r.name)
