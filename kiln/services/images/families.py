"""Image families: an image named ``<family>/<version>`` belongs to ``<family>``.

The base images ``kiln bake`` publishes are ``kiln/<recipe>/<version>`` (base_images.py), so
their families are ``kiln/micro`` and ``kiln/debian``. A family's newest image, in the caller's
region, is the available one with the latest CreationDate (the same second: the greater version
by natural order, ``app/10`` after ``app/9``). Whose images count (docs/aliases.md#families):

* a family starting with ``kiln/`` is the operator's: only the system account's images, so no
  account can shadow a base image by naming its own ``kiln/debian/99``;
* any other family is the caller's own images.
"""

from __future__ import annotations

import re

from kiln.catalog import SYSTEM_ACCOUNT_ID, Tx
from kiln.catalog import aliases as cat
from kiln.services.context import Caller

#: An image name's characters (images.py NAME_RE) without the space; at least one ``/`` level
#: below it is the version, so a family never ends with ``/``.
FAMILY_RE = re.compile(r"^[a-zA-Z0-9()\[\]./\-'@_]{1,127}$")
SYSTEM_PREFIX = "kiln/"


def is_family(text: str) -> bool:
    return bool(FAMILY_RE.match(text)) and not text.startswith("/") and not text.endswith("/")


def family_owner(caller: Caller, family: str) -> str:
    return SYSTEM_ACCOUNT_ID if family.startswith(SYSTEM_PREFIX) else caller.account_id


def _natural(text: str) -> tuple[tuple[int, int | str], ...]:
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part
    )


def newest_image(tx: Tx, caller: Caller, family: str) -> str | None:
    """The id of the family's newest available image in the caller's region, or None."""
    found = cat.family_images(tx, caller.region, family_owner(caller, family), family)
    if not found:
        return None
    return max(found, key=lambda f: (f[2], _natural(f[1])))[0]


def families(tx: Tx, caller: Caller) -> list[str]:
    """The families with an available image the caller's newest-image lookups would see:
    the operator's ``kiln/…`` ones and the caller's own, by name."""
    system = {
        f for f in cat.family_names(tx, caller.region, SYSTEM_ACCOUNT_ID) if f.startswith("kiln/")
    }
    own = {
        f
        for f in cat.family_names(tx, caller.region, caller.account_id)
        if not f.startswith(SYSTEM_PREFIX)
    }
    return sorted(system | own)
