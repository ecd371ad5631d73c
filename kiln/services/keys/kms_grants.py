"""KMS grants: CreateGrant, ListGrants, RevokeGrant, RetireGrant (docs/kms.md#grants).

A grant lets another account (its root, or any IAM principal of it: Kiln has no IAM, so the
account is what counts) use a customer key of the caller's for the listed operations. Only the
key's owner creates, lists and revokes grants on it; the AWS-managed ``alias/aws/ebs`` key takes
none (its key policy allows only EC2 in its own account, so KMS says AccessDeniedException).
What a grant lets EC2 do for the grantee is kiln/services/keys/kms_access.py.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass

from kiln import errors
from kiln.catalog import Catalog, SealError
from kiln.catalog import accounts as cat_accounts
from kiln.catalog import kms as cat
from kiln.catalog import kms_grants as cat_grants
from kiln.catalog.records import KmsGrantRecord, KmsKeyRecord, utc_now
from kiln.errors import KilnError
from kiln.services.context import Caller
from kiln.services.keys.kms_keys import Page, find_key, is_aws_managed
from kiln.services.keys.kms_state import key_arn

#: Operations a grant on a symmetric encryption key may allow (the rest of KMS's GrantOperation
#: enum are for asymmetric and HMAC keys: ValidationException).
SYMMETRIC_OPERATIONS = frozenset(
    {
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
        "CreateGrant",
        "RetireGrant",
        "DescribeKey",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
    }
)
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
_TOKEN_CONTEXT = "kms-grant-token"
_GRANT_ID_RE = re.compile(r"^[0-9a-f]{64}$")
_PRINCIPAL_RE = re.compile(
    r"^(?:(?P<bare>\d{12})|arn:aws:(?:iam|sts)::(?P<account>\d{12}):(?P<rest>[\w+=,.@:/-]+))$"
)
_KEY_ARN_RE = re.compile(r"^arn:aws:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):key/(?P<id>.+)$")


@dataclass(frozen=True, slots=True)
class CreateGrantRequest:
    key_id: str
    grantee_principal: str | None
    operations: tuple[str, ...]
    retiring_principal: str | None = None
    name: str | None = None
    constraints: bool = False  # Constraints were sent (unsupported)
    service_principal: bool = False  # GranteeServicePrincipal / RetiringServicePrincipal sent
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class CreateGrantResult:
    grant_id: str
    grant_token: str


@dataclass(frozen=True, slots=True)
class ListGrantsRequest:
    key_id: str
    limit: int | None = None
    marker: str | None = None
    grant_id: str | None = None
    grantee_principal: str | None = None


@dataclass(frozen=True, slots=True)
class RetireGrantRequest:
    grant_token: str | None = None
    key_id: str | None = None
    grant_id: str | None = None
    dry_run: bool = False


def _invalid(field: str, value: str, constraint: str) -> KilnError:
    return KilnError(
        errors.ValidationException,
        f"1 validation error detected: Value '{value[:256]}' at '{field}' failed to satisfy "
        f"constraint: {constraint}",
    )


def principal_account(catalog: Catalog, principal: str, field: str) -> str:
    """The account an AWS principal (``111122223333``, ``arn:aws:iam::111122223333:root``, an
    IAM user or role ARN, an STS assumed-role ARN) belongs to; it must be a Kiln account."""
    m = _PRINCIPAL_RE.match(principal)
    if m is None:
        raise _invalid(field, principal, "Member must be an AWS account ID or an IAM ARN")
    account = m.group("bare") or m.group("account")
    with catalog.read() as tx:
        known = cat_accounts.get_account(tx, account)
    if known is None:
        raise _invalid(field, principal, f"Member must name an existing account ({account})")
    return account


def _dry_run(flag: bool) -> None:
    if flag:
        raise KilnError(
            errors.KmsDryRun, "The request would have succeeded, but the DryRun option is set."
        )


def _grantable_key(catalog: Catalog, caller: Caller, key_id: str) -> KmsKeyRecord:
    key = find_key(catalog, caller, key_id)
    if is_aws_managed(key):
        raise KilnError(
            errors.KmsAccessDenied,
            f"User: arn:aws:iam::{caller.account_id}:root is not authorized to perform: "
            f"kms:CreateGrant on resource: {key_arn(key)} because the AWS managed key's policy "
            "allows it only through EC2 in its own account",
        )
    if key.state == "PendingDeletion":
        raise KilnError(errors.KmsInvalidState, f"{key_arn(key)} is pending deletion.")
    return key


def grant_token(catalog: Catalog, grant: KmsGrantRecord) -> str:
    sealed = catalog.sealer.seal(f"{grant.key_id} {grant.grant_id}".encode(), _TOKEN_CONTEXT)
    return base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def _from_token(catalog: Catalog, token: str) -> tuple[str, str]:
    try:
        sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        key_id, grant_id = catalog.sealer.unseal(sealed, _TOKEN_CONTEXT).decode().split(" ")
    except (SealError, ValueError):
        raise KilnError(errors.KmsInvalidGrantToken, "The grant token is not valid.") from None
    return key_id, grant_id


def create_grant(catalog: Catalog, caller: Caller, req: CreateGrantRequest) -> CreateGrantResult:
    """A grant on the caller's key for another principal; the same Name with the same grant
    again returns the existing grant (KMS's idempotence by name)."""
    if req.constraints:
        raise KilnError(
            errors.KmsUnsupportedOperation,
            "Grant constraints (EncryptionContextSubset, EncryptionContextEquals) are not "
            "supported.",
        )
    if req.service_principal:
        raise KilnError(
            errors.KmsUnsupportedOperation, "Grants to service principals are not supported."
        )
    if req.grantee_principal is None:
        raise KilnError(
            errors.ValidationException,
            "1 validation error detected: Value null at 'granteePrincipal' failed to satisfy "
            "constraint: Member must not be null",
        )
    if not req.operations:
        raise _invalid("operations", "[]", "Member must have length greater than or equal to 1")
    bad = sorted(set(req.operations) - SYMMETRIC_OPERATIONS)
    if bad:
        raise KilnError(
            errors.ValidationException,
            f"Grant operations {', '.join(bad)} are not valid for a symmetric encryption KMS key "
            "(KeySpec SYMMETRIC_DEFAULT).",
        )
    grantee = principal_account(catalog, req.grantee_principal, "granteePrincipal")
    if req.retiring_principal is not None:
        principal_account(catalog, req.retiring_principal, "retiringPrincipal")
    key = _grantable_key(catalog, caller, req.key_id)
    operations = tuple(dict.fromkeys(req.operations))
    with catalog.write() as tx:
        if req.name is not None:
            for g in cat_grants.list_grants(tx, key.key_id):
                if (g.name, g.grantee_principal, g.retiring_principal, set(g.operations)) == (
                    req.name,
                    req.grantee_principal,
                    req.retiring_principal,
                    set(operations),
                ):
                    _dry_run(req.dry_run)
                    return CreateGrantResult(g.grant_id, grant_token(catalog, g))
        _dry_run(req.dry_run)
        grant = KmsGrantRecord(
            grant_id=secrets.token_hex(32),
            key_id=key.key_id,
            grantee_principal=req.grantee_principal,
            grantee_account=grantee,
            retiring_principal=req.retiring_principal,
            operations=operations,
            name=req.name,
            issuing_account=caller.account_id,
            created=utc_now(),
        )
        cat_grants.create_grant(tx, grant)
    return CreateGrantResult(grant.grant_id, grant_token(catalog, grant))


def _check_grant_id(grant_id: str) -> None:
    if not _GRANT_ID_RE.match(grant_id):
        raise KilnError(errors.KmsInvalidGrantId, f"Invalid grant ID: {grant_id[:128]}")


def list_grants(
    catalog: Catalog, caller: Caller, req: ListGrantsRequest
) -> tuple[KmsKeyRecord, Page[KmsGrantRecord]]:
    """The grants on a key of the caller's, oldest first; ``Marker`` is the last grant id
    returned, ``Limit`` 1–100 (default 50; more is 100, as KMS does)."""
    key = find_key(catalog, caller, req.key_id)
    with catalog.read() as tx:
        grants = cat_grants.list_grants(tx, key.key_id)
    if req.grant_id is not None:
        grants = [g for g in grants if g.grant_id == req.grant_id]
    if req.grantee_principal is not None:
        grants = [g for g in grants if g.grantee_principal == req.grantee_principal]
    if req.marker is not None:
        ids = [g.grant_id for g in grants]
        if req.marker not in ids:
            raise KilnError(errors.KmsInvalidMarker, "The marker is not valid.")
        grants = grants[ids.index(req.marker) + 1 :]
    size = min(req.limit or DEFAULT_LIMIT, MAX_LIMIT)
    more = len(grants) > size
    return key, Page(tuple(grants[:size]), grants[size - 1].grant_id if more else None)


def revoke_grant(
    catalog: Catalog, caller: Caller, key_id: str, grant_id: str, dry_run: bool = False
) -> None:
    """The key's owner deletes a grant at once; EC2 stops honouring it from the next use."""
    key = find_key(catalog, caller, key_id)
    _check_grant_id(grant_id)
    with catalog.write() as tx:
        if not any(g.grant_id == grant_id for g in cat_grants.list_grants(tx, key.key_id)):
            raise KilnError(errors.KmsNotFound, f"Grant ID {grant_id} not found")
        _dry_run(dry_run)
        cat_grants.delete_grant(tx, key.key_id, grant_id)


def _any_key(catalog: Catalog, caller: Caller, key_id: str) -> KmsKeyRecord:
    """A key named by its ARN in any account (RetireGrant's KeyId), or a key of the caller's."""
    m = _KEY_ARN_RE.match(key_id)
    if m is None or m.group("account") == caller.account_id:
        return find_key(catalog, caller, key_id)
    with catalog.read() as tx:
        key = cat.get_kms_key(tx, catalog.sealer, m.group("id"))
    if key is None or key.account_id != m.group("account") or key.region != m.group("region"):
        raise KilnError(errors.KmsNotFound, f"Key '{key_id[:256]}' does not exist")
    return key


def retire_grant(catalog: Catalog, caller: Caller, req: RetireGrantRequest) -> None:
    """Deletes a grant by its token, or by key ARN and grant id. Allowed: the key's owner,
    the grant's retiring principal's account, and its grantee's account when the grant
    includes RetireGrant."""
    if req.grant_token is not None:
        key_id, grant_id = _from_token(catalog, req.grant_token)
    elif req.key_id is not None and req.grant_id is not None:
        _check_grant_id(req.grant_id)
        key_id, grant_id = _any_key(catalog, caller, req.key_id).key_id, req.grant_id
    else:
        raise KilnError(
            errors.ValidationException, "Either GrantToken, or both KeyId and GrantId, are needed."
        )
    with catalog.write() as tx:
        grant = next(
            (g for g in cat_grants.list_grants(tx, key_id) if g.grant_id == grant_id), None
        )
        if grant is None:
            raise KilnError(errors.KmsNotFound, f"Grant ID {grant_id} not found")
        retiring = (
            _PRINCIPAL_RE.match(grant.retiring_principal) if grant.retiring_principal else None
        )
        allowed = {grant.issuing_account}
        if retiring is not None:
            allowed.add(retiring.group("bare") or retiring.group("account"))
        if "RetireGrant" in grant.operations:
            allowed.add(grant.grantee_account)
        if caller.account_id not in allowed:
            raise KilnError(
                errors.KmsAccessDenied,
                f"User: arn:aws:iam::{caller.account_id}:root is not authorized to perform: "
                f"kms:RetireGrant on grant {grant_id}",
            )
        _dry_run(req.dry_run)
        cat_grants.delete_grant(tx, key_id, grant_id)
