"""S3 as a service of the AWS edge: rest-xml, path-style, S3's signing and spellings.

``PutObject`` and ``UploadPart`` bodies are streamed to the edge's spool directory
(kiln/aws/payload.py), never read into memory.
"""

from __future__ import annotations

from collections.abc import Mapping

from kiln import errors
from kiln.aws.context import Handler
from kiln.aws.edge import Service
from kiln.aws.model import load_model
from kiln.aws.rest_xml import RestXmlProtocol
from kiln.aws.sigv4 import S3_RULES
from kiln.aws.wire import WireRequest

API_VERSION = "2006-03-01"

#: Kiln code -> S3's. A request S3 cannot authenticate is SignatureDoesNotMatch (403); the
#: EC2-worded parse errors the edge and shared rules raise are InvalidArgument.
SPELLINGS = {
    errors.AuthFailure.code: errors.SignatureDoesNotMatch,
    errors.InvalidParameterValue.code: errors.InvalidArgument,
    errors.InvalidParameterCombination.code: errors.InvalidArgument,
    errors.MissingParameter.code: errors.InvalidArgument,
    errors.UnknownParameter.code: errors.InvalidArgument,
    errors.InvalidAction.code: errors.S3NotImplemented,
}


def s3_service(actions: Mapping[str, Handler]) -> Service:
    """S3 with ``actions`` (kiln/s3/actions.py ``ACTIONS`` in the server)."""
    protocol = RestXmlProtocol(load_model("s3", API_VERSION))

    def streams(request: WireRequest) -> str | None:
        return protocol.streaming_member(request, actions)

    return Service("s3", protocol, actions, SPELLINGS, signing=S3_RULES, streams=streams)
