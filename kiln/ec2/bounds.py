"""Bounds on every input value, checked once at the edge for every action.

From botocore's model where it has them (the ``max`` of strings and lists, ``min``/``max`` of
numbers; a string or list below its ``min`` is left to the rule, which answers with the code EC2
uses for that member), and
Kiln's own where it does not, so that no value reaches a rule, a column or a file name that it
cannot hold:

* integers fit their type (``integer``: 32 bits, ``long``: 64 bits, signed), as EC2's are;
* at most 200 filters and 200 values per filter (EC2's ``FilterLimitExceeded``), at most
  ``MAX_LIST_ITEMS`` elements in any other list;
* strings: a ``Description`` at most 255 characters (EC2's rule for images and snapshots,
  applied to every action), a ``UserData`` at most 64 KiB, anything else at most
  ``MAX_STRING`` characters unless the model says otherwise.

A violation is EC2's ``InvalidParameterValue`` naming the parameter (docs/security.md#limits).
"""

from __future__ import annotations

from botocore.model import Shape

from kiln import errors
from kiln.errors import Ec2Error

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
MAX_FILTERS = 200
MAX_FILTER_VALUES = 200
MAX_LIST_ITEMS = 1000
MAX_STRING = 8192
#: Kiln's own caps by the member's wire name, where the model has none.
STRING_CAPS = {"Description": 255, "UserData": 65536, "Url": 2048, "S3Key": 1024,
               "S3Prefix": 1024}
#: Where a model bound is broken, the code EC2 answers with (else InvalidParameterValue).
CODES = {"ImageNameRequest": errors.InvalidAMINameMalformed}

FilterLimitExceeded = errors.ErrorCode("FilterLimitExceeded", 400)


def _leaf(path: str) -> str:
    """The member's wire name: ``DiskContainer.Description`` -> ``Description``."""
    for segment in reversed(path.split(".")):
        if not segment.isdigit():
            return segment
    return path


def _code(shape: Shape) -> errors.ErrorCode:
    return CODES.get(shape.name, errors.InvalidParameterValue)


def check_string(shape: Shape, value: str, path: str) -> None:
    meta = shape.metadata
    longest = meta.get("max", STRING_CAPS.get(_leaf(path), MAX_STRING))
    if len(value) > longest:
        raise Ec2Error(_code(shape), f"Value for parameter {path} is too long: at most "
                                     f"{longest} characters, got {len(value)}.")


def check_integer(shape: Shape, value: int, path: str) -> None:
    lo, hi = INT32 if shape.type_name == "integer" else INT64
    lo = max(lo, shape.metadata.get("min", lo))
    hi = min(hi, shape.metadata.get("max", hi))
    if not lo <= value <= hi:
        shown = str(value) if len(str(value)) <= 40 else f"{str(value)[:40]}…"
        raise Ec2Error(_code(shape), f"Value ({shown}) for parameter {path} is invalid. "
                                     f"Expected an integer from {lo} to {hi}.")


def check_number(shape: Shape, value: float, path: str) -> None:
    lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise Ec2Error(_code(shape), f"Value ({value}) for parameter {path} is invalid. "
                                     f"Expected a number from {lo} to {hi}.")


def check_list(shape: Shape, count: int, path: str) -> None:
    leaf = _leaf(path)
    if leaf == "Filter" or (leaf == "Value" and ".Filter." in f".{path}"):
        cap = MAX_FILTERS if leaf == "Filter" else MAX_FILTER_VALUES
        if count > cap:
            what = "filters" if leaf == "Filter" else "values in one filter"
            raise Ec2Error(FilterLimitExceeded,
                           f"The request has {count} {what}; at most {cap} are allowed.")
        return
    longest = shape.metadata.get("max", MAX_LIST_ITEMS)
    if count > longest:
        raise Ec2Error(_code(shape), f"Parameter {path} has {count} elements; at most "
                                     f"{longest} are allowed.")
