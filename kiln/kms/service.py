"""KMS as a service of the AWS edge: JSON 1.1 (``X-Amz-Target: TrentService.*``), KMS's spellings."""

from __future__ import annotations

from collections.abc import Mapping

from kiln import errors
from kiln.aws.context import Handler
from kiln.aws.edge import Service
from kiln.aws.json import JsonProtocol
from kiln.aws.model import load_model

API_VERSION = "2014-11-01"

#: Kiln code -> KMS's (the parse errors the edge raises in EC2's words, auth, internal).
SPELLINGS = {
    errors.AuthFailure.code: errors.UnrecognizedClient,
    errors.InvalidAction.code: errors.UnknownOperation,
    errors.InvalidParameterValue.code: errors.ValidationException,
    errors.InvalidParameterCombination.code: errors.ValidationException,
    errors.MissingParameter.code: errors.ValidationException,
    errors.UnknownParameter.code: errors.ValidationException,
    errors.InvalidRequest.code: errors.ValidationException,
    errors.InternalError.code: errors.ErrorCode("KMSInternalException", 500),
}


def kms_service(actions: Mapping[str, Handler]) -> Service:
    """KMS with ``actions`` (kiln/kms/actions.py ``ACTIONS`` in the server)."""
    return Service("kms", JsonProtocol(load_model("kms", API_VERSION)), actions, SPELLINGS)
