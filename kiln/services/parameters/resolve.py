"""``ImageId=resolve:ssm:/name[:version]`` in RunInstances, as AWS takes it (docs/ssm.md#launch).

The parameter is the caller's own or a public one; it must be a String whose value is an image
id (or an image alias, docs/aliases.md). The instance records the image id it resolved to, so
DescribeInstances shows that id, as on AWS.
"""

from __future__ import annotations

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog.sealing import Sealer
from kiln.errors import KilnError
from kiln.services.context import Caller
from kiln.services.images.aliases import resolve_image_id
from kiln.services.parameters.names import parse_selector
from kiln.services.parameters.parameters import find

RESOLVE_SSM = "resolve:ssm:"


def launch_image_id(tx: Tx, sealer: Sealer, caller: Caller, image_id: str) -> str:
    """The real image id RunInstances launches for ``image_id``: a ``resolve:ssm:`` parameter's
    value, an alias's image, or ``image_id`` itself."""
    if not image_id.startswith(RESOLVE_SSM):
        return resolve_image_id(tx, caller, image_id)
    ref = image_id[len(RESOLVE_SSM) :]
    try:
        rec = find(tx, sealer, caller, parse_selector(ref))
    except KilnError as e:
        raise KilnError(
            errors.InvalidParameterValue,
            f"Invalid value '{image_id}' for ImageId: {e.message}",
        ) from None
    if rec.type != "String":
        raise KilnError(
            errors.InvalidParameterValue,
            f"Invalid value '{image_id}' for ImageId: the parameter is a {rec.type}, "
            "not a String holding an image id",
        )
    if not rec.value.startswith("ami-"):
        raise KilnError(
            errors.InvalidParameterValue,
            f"Invalid value '{image_id}' for ImageId: the parameter's value "
            f"{rec.value[:64]!r} is not an image id",
        )
    return resolve_image_id(tx, caller, rec.value)
