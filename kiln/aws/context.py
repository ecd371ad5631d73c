"""What a handler receives: who is calling, where, and the app's wiring; the handler type."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kiln.aws.wire import Params


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who is calling, where, and the app's wiring (catalog, stores, ...) as ``state``."""

    account_id: str
    access_key_id: str
    region: str
    request_id: str
    state: object


Handler = Callable[[RequestContext, Params], Mapping[str, object]]
"""A synchronous action: parsed params in, a result keyed by the output shape's members out.
Runs in a worker thread; raises ``KilnError`` for anything the caller did wrong."""
