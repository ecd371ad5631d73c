"""botocore's model of a service, loaded once: the single source of every shape Kiln speaks.

Every protocol module in ``kiln/aws`` parses and renders from a ``ServiceModel`` loaded here (the
same ``service-2.json`` boto3 and the AWS CLI use), so a member name, an XML element or a JSON key
is never typed by hand.
"""

from __future__ import annotations

import logging
from functools import cache

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel

log = logging.getLogger(__name__)


@cache
def load_model(service: str, api_version: str) -> ServiceModel:
    """The ``ServiceModel`` of ``service`` at ``api_version`` in the installed botocore."""
    data = Loader().load_service_model(service, "service-2", api_version=api_version)
    model = ServiceModel(data, service_name=service)
    log.debug(
        "loaded %s model %s with %d operations", service, api_version, len(model.operation_names)
    )
    return model


@cache
def operation_names(model: ServiceModel) -> frozenset[str]:
    """Every operation the model defines."""
    return frozenset(model.operation_names)


def find_operation(model: ServiceModel, name: str) -> OperationModel | None:
    """The operation model of ``name``, or None when the service has no such operation."""
    if name not in operation_names(model):
        return None
    return model.operation_model(name)
