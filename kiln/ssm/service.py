"""SSM as a service of the AWS edge: JSON 1.1 (``X-Amz-Target: AmazonSSM.*``), SSM's spellings."""

from __future__ import annotations

from collections.abc import Mapping

from kiln import errors
from kiln.aws.context import Handler
from kiln.aws.edge import Service
from kiln.aws.json import JsonProtocol
from kiln.aws.model import load_model

API_VERSION = "2014-11-06"

#: Kiln code -> SSM's (the parse errors the edge raises in EC2's words, auth, internal, and the
#: image and paging codes the shared rules raise).
SPELLINGS = {
    errors.AuthFailure.code: errors.UnrecognizedClient,
    errors.InvalidAction.code: errors.UnknownOperation,
    errors.InvalidParameterValue.code: errors.ValidationException,
    errors.InvalidParameterCombination.code: errors.ValidationException,
    errors.MissingParameter.code: errors.ValidationException,
    errors.UnknownParameter.code: errors.ValidationException,
    errors.InvalidRequest.code: errors.ValidationException,
    errors.InvalidPaginationToken.code: errors.InvalidNextToken,
    errors.InternalError.code: errors.SsmInternalServerError,
}


def ssm_service(actions: Mapping[str, Handler]) -> Service:
    """SSM with ``actions`` (kiln/ssm/actions.py ``ACTIONS`` in the server)."""
    return Service("ssm", JsonProtocol(load_model("ssm", API_VERSION)), actions, SPELLINGS)
