"""EC2 Image Builder as a service of the AWS edge: REST-JSON (kiln/aws/rest_json.py), Image
Builder's spellings of Kiln's codes."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from botocore.model import ServiceModel

from kiln import errors
from kiln.aws.context import Handler
from kiln.aws.edge import Service
from kiln.aws.model import load_model
from kiln.aws.rest_json import RestJsonProtocol

API_VERSION = "2019-12-02"

SPELLINGS = {
    errors.AuthFailure.code: errors.UnrecognizedClient,
    errors.InvalidAction.code: errors.UnknownOperation,
    errors.InvalidParameterValue.code: errors.ImagebuilderInvalidParameterValue,
    errors.InvalidParameterCombination.code: errors.ImagebuilderInvalidParameterValue,
    errors.MissingParameter.code: errors.ImagebuilderInvalidRequest,
    errors.UnknownParameter.code: errors.ImagebuilderInvalidRequest,
    errors.InvalidRequest.code: errors.ImagebuilderInvalidRequest,
    errors.ValidationException.code: errors.ImagebuilderInvalidRequest,
    errors.InternalError.code: errors.ImagebuilderServiceException,
}


@cache
def model() -> ServiceModel:
    return load_model("imagebuilder", API_VERSION)


def imagebuilder_service(actions: Mapping[str, Handler]) -> Service:
    """Image Builder with ``actions`` (kiln/imagebuilder/actions.py ``ACTIONS``)."""
    return Service("imagebuilder", RestJsonProtocol(model()), actions, SPELLINGS)
