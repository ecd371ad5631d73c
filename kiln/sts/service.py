"""STS as a service of the AWS edge: plain AWS Query (``<ErrorResponse>``), STS's spellings."""

from __future__ import annotations

from collections.abc import Mapping

from kiln import errors
from kiln.aws.context import Handler
from kiln.aws.edge import Service
from kiln.aws.model import load_model
from kiln.aws.query import QueryProtocol

API_VERSION = "2011-06-15"

#: Kiln code -> STS's: a key STS cannot verify is InvalidClientTokenId (403).
SPELLINGS = {
    errors.AuthFailure.code: errors.InvalidClientTokenId,
    errors.InternalError.code: errors.InternalFailure,
}


def sts_service(actions: Mapping[str, Handler]) -> Service:
    """STS with ``actions`` (kiln/sts/actions.py ``ACTIONS`` in the server)."""
    return Service(
        "sts", QueryProtocol(load_model("sts", API_VERSION), ec2=False), actions, SPELLINGS
    )
