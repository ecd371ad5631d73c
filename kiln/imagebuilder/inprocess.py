"""The Ec2Port of a build that ``kiln serve`` runs itself (CreateImage of the Image Builder API):
the same EC2 calls as ``kiln build``'s (kiln/buildports/ec2.py), made in process through the EC2
``ACTIONS`` handlers, and so the EC2 rules, as the calling account; no HTTP, no credentials."""

from __future__ import annotations

import base64
import secrets
from typing import Any

from kiln.aws.context import RequestContext
from kiln.buildports.ec2 import HttpEc2
from kiln.errors import KilnError
from kiln.services.context import Caller, Services


def _action(method: str) -> str:
    return "".join(p.capitalize() for p in method.split("_"))


class InProcessEc2(HttpEc2):
    """HttpEc2's waits and calls, each call a direct call of the EC2 handler."""

    def __init__(self, services: Services, caller: Caller, access_key_id: str) -> None:
        super().__init__("in-process", caller.region, access_key_id, "")
        self._services = services
        self._account = caller.account_id

    def _call(self, name: str, region: str | None = None, **kwargs: Any) -> Any:
        from kiln.ec2.actions import ACTIONS

        ctx = RequestContext(
            self._account,
            self._creds[0],
            region or self.region,
            f"kiln-ib-{secrets.token_hex(8)}",
            self._services,
        )
        out = dict(ACTIONS[_action(name)](ctx, kwargs))
        if name == "get_console_output" and out.get("Output"):
            out["Output"] = base64.b64decode(str(out["Output"])).decode(errors="replace")
        return out

    def describe_image(self, image_id: str) -> dict[str, object] | None:
        try:
            found = self._call("describe_images", ImageIds=[image_id])["Images"]
        except KilnError as e:
            if "NotFound" in e.code.code:
                return None
            raise
        return dict(found[0]) if found else None
