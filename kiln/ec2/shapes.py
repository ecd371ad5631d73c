"""botocore's EC2 model, loaded once (kiln/aws/model.py), and the API version Kiln renders.

The naming rules of EC2's flavour of the Query protocol live with the protocol
(kiln/aws/query.py): a member is sent as its ``queryName``, else its ``locationName`` with the
first letter capitalised, else the member name, and every list is flattened; in the XML answer a
member is its ``locationName`` and every list element an ``<item>``.
"""

from __future__ import annotations

from functools import cache

from botocore.model import OperationModel, ServiceModel

from kiln.aws.model import find_operation, load_model

API_VERSION = "2016-11-15"
XML_NAMESPACE = f"http://ec2.amazonaws.com/doc/{API_VERSION}/"


def service_model() -> ServiceModel:
    """The EC2 ``ServiceModel`` of the installed botocore (loaded on first use, then shared)."""
    return load_model("ec2", API_VERSION)


@cache
def operation_names() -> frozenset[str]:
    """Every action the EC2 model defines (``DescribeImages``, ...)."""
    return frozenset(service_model().operation_names)


def operation(action: str) -> OperationModel | None:
    """The operation model of ``action``, or None when EC2 has no such action."""
    return find_operation(service_model(), action)
