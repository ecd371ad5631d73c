"""The supported SSM actions: exactly the keys of ACTIONS. Each maps to its handler."""

from __future__ import annotations

from collections.abc import Mapping

from kiln.aws.context import Handler
from kiln.ssm import parameters

ACTIONS: Mapping[str, Handler] = {
    "PutParameter": parameters.put_parameter,
    "GetParameter": parameters.get_parameter,
    "GetParameters": parameters.get_parameters,
    "GetParametersByPath": parameters.get_parameters_by_path,
    "DescribeParameters": parameters.describe_parameters,
    "DeleteParameter": parameters.delete_parameter,
    "DeleteParameters": parameters.delete_parameters,
    "GetParameterHistory": parameters.get_parameter_history,
}
