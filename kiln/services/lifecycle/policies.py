"""Storing lifecycle policies: ``kiln lifecycle apply|list|delete`` (docs/lifecycle.md).

A policy belongs to an account and a region, and is named uniquely there; applying a document
whose name is taken replaces that policy (its run times are kept, so the scheduler's clock does
not restart). A refused document changes nothing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from kiln import errors
from kiln.catalog import accounts as cat_accounts
from kiln.catalog import lifecycle as cat
from kiln.catalog.records import LifecyclePolicyRecord, utc_now
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.lifecycle.policy_document import load_text, parse_policy

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ApplyLifecyclePolicyResult:
    policy: LifecyclePolicyRecord
    created: bool


def policy_arn(caller: Caller, name: str) -> str:
    """Image Builder's ARN of the policy (its pattern allows ``[a-z0-9-_]`` after the slash)."""
    slug = re.sub(r"[^a-z0-9-_]", "-", name.lower())
    return f"arn:aws:imagebuilder:{caller.region}:{caller.account_id}:lifecycle-policy/{slug}"


def _check_caller(services: Services, caller: Caller) -> None:
    if caller.region not in services.regions:
        raise KilnError(
            errors.ImagebuilderInvalidParameterValue,
            f"region {caller.region} is not served here",
        )
    with services.catalog.read() as tx:
        if cat_accounts.get_account(tx, caller.account_id) is None:
            raise KilnError(
                errors.ImagebuilderInvalidParameterValue, f"no account {caller.account_id}"
            )


def apply_lifecycle_policy(
    services: Services, caller: Caller, text: str
) -> ApplyLifecyclePolicyResult:
    """Create or replace the caller's policy from a document's text (JSON or YAML).

    :raises KilnError: InvalidParameterValueException naming the field at fault."""
    doc = parse_policy(load_text(text))
    _check_caller(services, caller)
    with services.catalog.write() as tx:
        created = cat.get_lifecycle_policy(tx, caller.account_id, caller.region, doc.name) is None
        record = cat.put_lifecycle_policy(
            tx,
            caller.account_id,
            caller.region,
            doc.name,
            arn=policy_arn(caller, doc.name),
            status=doc.status,
            document=doc.stored,
            selection=doc.extension,
            now=utc_now(),
        )
    log.info(
        "lifecycle policy %s %s for %s in %s",
        doc.name,
        "created" if created else "replaced",
        caller.account_id,
        caller.region,
    )
    return ApplyLifecyclePolicyResult(record, created)


def list_lifecycle_policies(
    services: Services, account_id: str | None = None, region: str | None = None
) -> list[LifecyclePolicyRecord]:
    with services.catalog.read() as tx:
        return cat.list_lifecycle_policies(tx, account_id, region)


def delete_lifecycle_policy(services: Services, caller: Caller, name: str) -> None:
    """:raises KilnError: ResourceNotFoundException when the caller has no such policy."""
    with services.catalog.write() as tx:
        if not cat.delete_lifecycle_policy(tx, caller.account_id, caller.region, name):
            raise KilnError(
                errors.ImagebuilderResourceNotFound,
                f"The lifecycle policy {name} does not exist in {caller.region} for account "
                f"{caller.account_id}.",
            )
