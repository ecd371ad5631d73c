"""EC2 as a service of the AWS edge (kiln/aws/edge.py): its protocol, its dry runs, its app.

EC2 speaks its own flavour of the Query protocol (kiln/ec2/protocol.py) and spells every Kiln
error code as it is (the table in kiln/errors.py *is* EC2's spelling). ``build_ec2_app`` serves
EC2 alone (the edge's tests use it); ``kiln/app.py`` mounts EC2 with STS and KMS.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime

from starlette.applications import Starlette

from kiln import errors
from kiln.aws.context import Handler, RequestContext
from kiln.aws.edge import Service, build_edge
from kiln.aws.sigv4 import CredentialLookup
from kiln.aws.wire import Params
from kiln.ec2.protocol import ec2_query
from kiln.errors import KilnError

__all__ = ["Handler", "RequestContext", "build_ec2_app", "check_dry_run", "ec2_service"]

SERVICE = "ec2"
DRY_RUN_MESSAGE = "Request would have succeeded, but DryRun flag is set."


def check_dry_run(params: Params) -> None:
    """Raise DryRunOperation when the request carries ``DryRun=true``."""
    if params.get("DryRun") is True:
        raise KilnError(errors.DryRunOperation, DRY_RUN_MESSAGE)


def _dry_run_first(handler: Handler) -> Handler:
    def answer(ctx: RequestContext, params: Params) -> Mapping[str, object]:
        check_dry_run(params)
        return handler(ctx, params)

    return answer


def ec2_service(actions: Mapping[str, Handler]) -> Service:
    """EC2 with ``actions`` (kiln/ec2/actions.py ``ACTIONS`` in the server).

    A dry run is answered before any other check, as EC2 answers its root user: once the
    request has parsed against the action's input shape (a missing required member is still
    ``MissingParameter``), is signed by a known key and names a served region, ``DryRun=true``
    is ``DryRunOperation`` whatever the ids, their existence or their state. Kiln has no IAM;
    every account acts as its root user, whom EC2 never answers ``UnauthorizedOperation``
    (docs/api.md#dry-runs)."""
    return Service(SERVICE, ec2_query(), {name: _dry_run_first(h) for name, h in actions.items()})


def _utc_now() -> datetime:
    return datetime.now(UTC)


def build_ec2_app(
    actions: Mapping[str, Handler],
    lookup_credential: CredentialLookup,
    regions: Collection[str],
    state: object,
    *,
    clock: Callable[[], datetime] = _utc_now,
) -> Starlette:
    """An app serving EC2 alone (``actions`` keyed by EC2 action name), see ``build_edge``."""
    return build_edge([ec2_service(actions)], lookup_credential, regions, state, clock=clock)
