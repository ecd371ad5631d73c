"""DescribeAccountAttributes: what EC2 says of an account in a region, with Kiln's limits
(docs/regions.md#account-attributes)."""

from __future__ import annotations

from collections.abc import Sequence

from kiln import errors
from kiln.catalog import networks as cat_net
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.instances.run_instances import MAX_LIVE_INSTANCES
from kiln.services.networks.defaults import ensure_for
from kiln.services.validate import dry_run

#: EC2's defaults for a new account, which Kiln keeps (it has no Elastic IPs to hand out, so
#: the address limits are EC2's and never reached).
VPC_MAX_SECURITY_GROUPS_PER_INTERFACE = 5
MAX_ELASTIC_IPS = 5
ATTRIBUTE_NAMES = (
    "supported-platforms",
    "default-vpc",
    "max-instances",
    "vpc-max-security-groups-per-interface",
    "max-elastic-ips",
    "vpc-max-elastic-ips",
)


def describe_account_attributes(
    services: Services,
    caller: Caller,
    names: Sequence[str] = (),
    dry_run_flag: bool = False,
) -> dict[str, list[str]]:
    """name -> values, in EC2's order; ``default-vpc`` is the account's default VPC here
    (made now if it never was; ``none`` after the account deleted it)."""
    for name in names:
        if name not in ATTRIBUTE_NAMES:
            raise KilnError(
                errors.InvalidParameterValue,
                f"Invalid value '{name[:64]}' for AttributeName. Valid values: "
                f"{', '.join(ATTRIBUTE_NAMES)}.",
            )
    dry_run(dry_run_flag)
    wanted = [n for n in ATTRIBUTE_NAMES if not names or n in names]
    out: dict[str, list[str]] = {}
    for name in wanted:
        if name == "supported-platforms":
            out[name] = ["VPC"]
        elif name == "default-vpc":
            ensure_for(services, caller)
            with services.catalog.read() as tx:
                vpc = cat_net.default_vpc(tx, caller.account_id, caller.region)
            out[name] = [vpc.vpc_id if vpc is not None else "none"]
        elif name == "max-instances":
            out[name] = [str(MAX_LIVE_INSTANCES)]
        elif name == "vpc-max-security-groups-per-interface":
            out[name] = [str(VPC_MAX_SECURITY_GROUPS_PER_INTERFACE)]
        else:
            out[name] = [str(MAX_ELASTIC_IPS)]
    return out
