"""botocore's EC2 model, loaded once, with the naming rules of the EC2 Query protocol.

Everything Kiln says on the wire is derived from this model (the same JSON boto3 and the AWS CLI
use), so a member name, an XML element name or a list wrapping is never typed by hand:

* **Input** (query form): a member is sent as its ``queryName``, else its ``locationName`` with the
  first letter capitalised, else the member name; list elements are ``Name.1``, ``Name.2`` ...
  (EC2 flattens every list). These are exactly the rules of ``botocore.serialize.EC2Serializer``.
* **Output** (XML): a member is the element ``locationName`` (else the member name); a list is
  that element holding one ``<item>`` per element.
"""

from __future__ import annotations

import logging
from functools import cache, lru_cache

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel, Shape

log = logging.getLogger(__name__)

API_VERSION = "2016-11-15"
XML_NAMESPACE = f"http://ec2.amazonaws.com/doc/{API_VERSION}/"


@cache
def service_model() -> ServiceModel:
    """The EC2 ``ServiceModel`` of the installed botocore (loaded on first use, then shared)."""
    data = Loader().load_service_model("ec2", "service-2", api_version=API_VERSION)
    model = ServiceModel(data, service_name="ec2")
    log.debug("loaded EC2 model %s with %d operations", API_VERSION, len(model.operation_names))
    return model


@cache
def operation_names() -> frozenset[str]:
    """Every action the EC2 model defines (``DescribeImages``, ...)."""
    return frozenset(service_model().operation_names)


@lru_cache(maxsize=1024)
def operation(action: str) -> OperationModel | None:
    """The operation model of ``action``, or None when EC2 has no such action."""
    if action not in operation_names():
        return None
    return service_model().operation_model(action)


def query_name(member_name: str, member: Shape) -> str:
    """The name of a structure member in the query form (EC2Serializer's rule)."""
    serialization = member.serialization
    if "queryName" in serialization:
        return str(serialization["queryName"])
    if "name" in serialization:
        name = str(serialization["name"])
        return name[0].upper() + name[1:]
    return member_name


def xml_name(member_name: str, member: Shape) -> str:
    """The XML element name of a structure member in a response."""
    return str(member.serialization.get("name", member_name))


@lru_cache(maxsize=4096)
def query_members(shape: Shape) -> dict[str, tuple[str, Shape]]:
    """For a structure shape: query-form name -> (member name, member shape)."""
    return {query_name(name, member): (name, member) for name, member in shape.members.items()}


LIST_ITEM = "item"
"""EC2 wraps every element of every list in ``<item>`` (botocore's parser accepts any tag)."""
