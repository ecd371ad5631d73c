"""Parameter names, paths and selectors, as SSM checks them (docs/ssm.md#names)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kiln import errors
from kiln.errors import KilnError

NAME_RE = re.compile(r"^[a-zA-Z0-9_.\-/]+$")
MAX_LEVELS = 15
#: Names no account may write: AWS's public parameters and Kiln's own (docs/ssm.md).
RESERVED_PATHS = ("/aws/", "/kiln/")


@dataclass(frozen=True, slots=True)
class Selector:
    """``name``, ``name:version`` (or ``name:label``, which Kiln refuses)."""

    name: str
    version: int | None
    text: str | None  # the selector as given (":3"), echoed as the Parameter's Selector


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise KilnError(
            errors.ValidationException,
            f"Parameter name {name!r} is not valid: a name consists of letters, numbers and "
            "the symbols . - _ /",
        )
    if "/" in name and not name.startswith("/"):
        raise KilnError(
            errors.ValidationException,
            f"Parameter name {name!r}: a name with a / must be fully qualified (begin with /)",
        )
    if "//" in name:
        raise KilnError(errors.ValidationException, f"Parameter name {name!r} has an empty level")
    if name.count("/") > MAX_LEVELS:
        raise KilnError(
            errors.HierarchyLevelLimitExceeded,
            f"Parameter name {name!r} has more than {MAX_LEVELS} levels of hierarchy",
        )
    return name


def check_writable(name: str) -> str:
    """A name an account may put: not under a reserved path, nor prefixed with aws or ssm."""
    check_name(name)
    low = name.lower()
    if any(low.startswith(p) for p in RESERVED_PATHS):
        raise KilnError(errors.SsmAccessDenied, f"No access to reserved parameter name: {name}.")
    if low.lstrip("/").startswith(("aws", "ssm")):
        raise KilnError(
            errors.ValidationException,
            'Parameter name: can\'t be prefixed with "aws" or "ssm" (case-insensitive).',
        )
    return name


def check_path(path: str) -> str:
    """A GetParametersByPath path: fully qualified; returned with a trailing ``/``."""
    if not path.startswith("/") or not NAME_RE.match(path) or "//" in path:
        raise KilnError(
            errors.ValidationException,
            f"The parameter path {path!r} is not valid: a path begins with / and consists of "
            "letters, numbers and the symbols . - _ /",
        )
    if path.rstrip("/").count("/") > MAX_LEVELS:
        raise KilnError(
            errors.HierarchyLevelLimitExceeded, f"Path {path!r} has more than {MAX_LEVELS} levels"
        )
    return path if path.endswith("/") else path + "/"


def under_path(name: str, path: str, recursive: bool) -> bool:
    """Whether ``name`` is below ``path`` (which ends with ``/``): anywhere, or one level."""
    if not name.startswith(path) or len(name) == len(path):
        return False
    return recursive or "/" not in name[len(path) :]


def parse_selector(text: str) -> Selector:
    """``name[:version]``; a label selector is ValidationException (Kiln has no labels)."""
    name, colon, rest = text.partition(":")
    check_name(name)
    if not colon:
        return Selector(name, None, None)
    if rest.isdigit() and len(rest) <= 9 and int(rest) >= 1:
        return Selector(name, int(rest), f":{rest}")
    raise KilnError(
        errors.ValidationException,
        f"Parameter selector {text!r}: Kiln supports name:version selectors, not labels",
    )


def parameter_arn(region: str, account_id: str, name: str) -> str:
    """``arn:aws:ssm:REGION:ACCOUNT:parameter/NAME`` (no account for public parameters)."""
    return f"arn:aws:ssm:{region}:{account_id}:parameter/{name.lstrip('/')}"
