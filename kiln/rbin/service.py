"""Recycle Bin as a service of the AWS edge: REST-JSON (kiln/aws/rest_json.py), rbin's spellings.

rbin's errors carry a ``Reason`` (ValidationException ``INVALID_PARAMETER_VALUE`` or
``INVALID_PAGE_TOKEN``, ResourceNotFoundException ``RULE_NOT_FOUND``, ConflictException
``INVALID_RULE_STATE``, ServiceQuotaExceededException ``SERVICE_QUOTA_EXCEEDED``), which boto3
puts at the top of the error response; ``RbinProtocol`` adds it to the JSON error body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from kiln import errors
from kiln.aws.context import Handler
from kiln.aws.edge import Service
from kiln.aws.model import load_model
from kiln.aws.rest_json import RestJsonProtocol
from kiln.aws.wire import Rendered

API_VERSION = "2021-06-15"

SPELLINGS = {
    errors.AuthFailure.code: errors.UnrecognizedClient,
    errors.InvalidAction.code: errors.UnknownOperation,
    errors.InvalidParameterValue.code: errors.ValidationException,
    errors.InvalidParameterCombination.code: errors.ValidationException,
    errors.MissingParameter.code: errors.ValidationException,
    errors.UnknownParameter.code: errors.ValidationException,
    errors.InvalidRequest.code: errors.ValidationException,
    errors.InvalidPaginationToken.code: errors.ValidationException,
    errors.InternalError.code: errors.RbinInternalServer,
}

_REASONS = {
    errors.RbinResourceNotFound.code: "RULE_NOT_FOUND",
    errors.RbinConflict.code: "INVALID_RULE_STATE",
    errors.RbinQuotaExceeded.code: "SERVICE_QUOTA_EXCEEDED",
}


def reason(code: str, message: str) -> str | None:
    """The ``Reason`` rbin's model gives an error ``code`` with ``message``."""
    if code == errors.ValidationException.code:
        return "INVALID_PAGE_TOKEN" if "pagination token" in message else "INVALID_PARAMETER_VALUE"
    return _REASONS.get(code)


@dataclass(frozen=True, slots=True)
class RbinProtocol(RestJsonProtocol):
    """rest-json with rbin's ``Message`` and ``Reason`` in error bodies."""

    def render_error(self, code: str, message: str, status: int, request_id: str) -> Rendered:
        rendered = RestJsonProtocol.render_error(self, code, message, status, request_id)
        why = reason(code, message)
        if why is None:
            return rendered
        body = {"__type": code, "message": message, "Message": message, "Reason": why}
        return Rendered(
            json.dumps(body).encode(), rendered.content_type, rendered.headers, rendered.status
        )


def rbin_service(actions: Mapping[str, Handler]) -> Service:
    """Recycle Bin with ``actions`` (kiln/rbin/actions.py ``ACTIONS`` in the server)."""
    return Service("rbin", RbinProtocol(load_model("rbin", API_VERSION)), actions, SPELLINGS)
