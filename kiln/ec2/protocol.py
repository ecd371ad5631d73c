"""EC2's flavour of the Query protocol (kiln/aws/query.py) bound to EC2's model and limits.

``parse_query`` turns the form a client sent into a dict keyed by the model's member names;
``render_result`` renders a handler's dict as EC2's XML, which botocore's ``EC2QueryParser``
reads back unchanged; ``render_error`` is EC2's ``<Response><Errors>``. See docs/ec2-protocol.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from kiln import errors
from kiln.aws import xml
from kiln.aws.bounds import Limits
from kiln.aws.query import QueryProtocol, decode_form
from kiln.aws.wire import Params
from kiln.aws.xml import format_timestamp
from kiln.ec2.shapes import service_model

__all__ = [
    "EC2_LIMITS",
    "Params",
    "decode_form",
    "ec2_query",
    "format_timestamp",
    "parse_query",
    "render_error",
    "render_result",
]

#: EC2's limits where its model has none (docs/security.md#limits): a ``Description`` at most
#: 255 characters (EC2's rule for images and snapshots, applied to every action), a
#: ``UserData`` at most 64 KiB; 200 filters of 200 values; a too-long image name is EC2's
#: ``InvalidAMIName.Malformed``.
EC2_LIMITS = Limits(
    invalid=errors.InvalidParameterValue,
    string_caps={
        "Description": 255,
        "UserData": 65536,
        "Url": 2048,
        "S3Key": 1024,
        "S3Prefix": 1024,
    },
    codes={"ImageNameRequest": errors.InvalidAMINameMalformed},
    filters=True,
)


@cache
def ec2_query() -> QueryProtocol:
    """The EC2 Query protocol (built on first use: loading the model takes ~0.2 s)."""
    return QueryProtocol(service_model(), ec2=True, limits=EC2_LIMITS)


def parse_query(action: str, form: Mapping[str, list[str]]) -> Params:
    """Decode the EC2 Query form of ``action`` (see ``QueryProtocol.parse``)."""
    return ec2_query().parse(action, form)


def render_result(action: str, result: Mapping[str, object], request_id: str) -> bytes:
    """``result`` as EC2's XML response body of ``action``."""
    return ec2_query().render(action, result, request_id).body


def render_error(code: str, message: str, request_id: str) -> bytes:
    """EC2's error body: ``<Response><Errors><Error><Code>…</Code><Message>…</Message></Error>
    </Errors><RequestID>…</RequestID></Response>``."""
    return xml.ec2_error(code, message, request_id)
