"""Bounds on every input value, checked once at the edge for every action of every service.

From botocore's model where it has them (the ``max`` of strings and lists, ``min``/``max`` of
numbers, and — where the service's :class:`Limits` say so — the ``min`` of strings and lists),
and Kiln's own where it does not, so that no value reaches a rule, a column or a file name that
it cannot hold:

* integers fit their type (``integer``: 32 bits, ``long``: 64 bits, signed);
* lists: at most ``Limits.max_list`` elements unless the model says otherwise; with
  ``Limits.filters`` (EC2), at most 200 filters and 200 values per filter
  (EC2's ``FilterLimitExceeded``);
* strings: at most ``Limits.string_caps[wire name]`` characters when the model has no ``max``
  (EC2: a ``Description`` at most 255, a ``UserData`` at most 64 KiB), else ``max_string``.

A violation is ``Limits.invalid`` (EC2's ``InvalidParameterValue``, JSON's
``ValidationException``) naming the parameter, or the code ``Limits.codes`` gives the shape
(docs/security.md#limits). Each service states its own limits next to its protocol
(kiln/ec2/protocol.py ``EC2_LIMITS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from botocore.model import Shape

from kiln import errors
from kiln.errors import ErrorCode, KilnError

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
MAX_FILTERS = 200
MAX_FILTER_VALUES = 200
MAX_LIST_ITEMS = 1000
MAX_STRING = 8192

FilterLimitExceeded = errors.ErrorCode("FilterLimitExceeded", 400)


@dataclass(frozen=True, slots=True)
class Limits:
    """One service's input limits where its model is silent, and the codes it answers with."""

    invalid: ErrorCode = errors.InvalidParameterValue
    #: Kiln's own caps by the member's wire name, where the model has none.
    string_caps: Mapping[str, int] = field(default_factory=dict)
    #: Where a model bound is broken, the code the service answers with, by shape name.
    codes: Mapping[str, ErrorCode] = field(default_factory=dict)
    max_string: int = MAX_STRING
    max_list: int = MAX_LIST_ITEMS
    #: EC2's filter limits (``Filter.N``, ``Filter.N.Value.M``).
    filters: bool = False
    #: Check the model's ``min`` of strings and lists too (JSON services); EC2 leaves it to the
    #: rules, which answer with the code EC2 uses for that member.
    check_min: bool = False


def _leaf(path: str) -> str:
    """The member's wire name: ``DiskContainer.Description`` -> ``Description``."""
    for segment in reversed(path.split(".")):
        if not segment.isdigit():
            return segment
    return path


def _code(limits: Limits, shape: Shape) -> ErrorCode:
    return limits.codes.get(shape.name, limits.invalid)


def check_string(limits: Limits, shape: Shape, value: str, path: str) -> None:
    meta = shape.metadata
    longest = meta.get("max", limits.string_caps.get(_leaf(path), limits.max_string))
    if len(value) > longest:
        raise KilnError(
            _code(limits, shape),
            f"Value for parameter {path} is too long: at most "
            f"{longest} characters, got {len(value)}.",
        )
    shortest = meta.get("min", 0) if limits.check_min else 0
    if len(value) < shortest:
        raise KilnError(
            _code(limits, shape),
            f"Value for parameter {path} is too short: at "
            f"least {shortest} characters, got {len(value)}.",
        )


def check_integer(limits: Limits, shape: Shape, value: int, path: str) -> None:
    lo, hi = INT32 if shape.type_name == "integer" else INT64
    lo = max(lo, shape.metadata.get("min", lo))
    hi = min(hi, shape.metadata.get("max", hi))
    if not lo <= value <= hi:
        shown = str(value) if len(str(value)) <= 40 else f"{str(value)[:40]}…"
        raise KilnError(
            _code(limits, shape),
            f"Value ({shown}) for parameter {path} is invalid. "
            f"Expected an integer from {lo} to {hi}.",
        )


def check_number(limits: Limits, shape: Shape, value: float, path: str) -> None:
    lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise KilnError(
            _code(limits, shape),
            f"Value ({value}) for parameter {path} is invalid. "
            f"Expected a number from {lo} to {hi}.",
        )


def check_list(limits: Limits, shape: Shape, count: int, path: str) -> None:
    leaf = _leaf(path)
    if limits.filters and (leaf == "Filter" or (leaf == "Value" and ".Filter." in f".{path}")):
        cap = MAX_FILTERS if leaf == "Filter" else MAX_FILTER_VALUES
        if count > cap:
            what = "filters" if leaf == "Filter" else "values in one filter"
            raise KilnError(
                FilterLimitExceeded, f"The request has {count} {what}; at most {cap} are allowed."
            )
        return
    longest = shape.metadata.get("max", limits.max_list)
    if count > longest:
        raise KilnError(
            _code(limits, shape),
            f"Parameter {path} has {count} elements; at most {longest} are allowed.",
        )
    shortest = shape.metadata.get("min", 0) if limits.check_min else 0
    if count < shortest:
        raise KilnError(
            _code(limits, shape),
            f"Parameter {path} has {count} elements; at least {shortest} are required.",
        )
