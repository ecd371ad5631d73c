"""The supported STS actions: exactly the keys of ACTIONS. Each maps to its handler."""

from __future__ import annotations

from collections.abc import Mapping

from kiln.aws.context import Handler
from kiln.sts import identity

ACTIONS: Mapping[str, Handler] = {
    "GetCallerIdentity": identity.get_caller_identity,
}
