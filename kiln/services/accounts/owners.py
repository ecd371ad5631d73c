"""The ``Owners`` / ``OwnerIds`` of DescribeImages and DescribeSnapshots, resolved to account ids."""

from __future__ import annotations

from kiln import errors
from kiln.catalog import SYSTEM_ACCOUNT_ALIAS, SYSTEM_ACCOUNT_ID, Tx
from kiln.catalog import accounts as cat_accounts
from kiln.catalog.records import VERIFIED_PROVIDER_ALIAS
from kiln.errors import KilnError
from kiln.services.context import Caller
from kiln.services.validate import ACCOUNT_RE

#: Owner aliases EC2 knows; those no Kiln account carries match nothing.
WELL_KNOWN_ALIASES = frozenset(
    {"amazon", "aws-marketplace", "aws-backup-vault", SYSTEM_ACCOUNT_ALIAS}
)


def resolve_owners(
    tx: Tx, caller: Caller, owners: tuple[str, ...], amazon_images: bool = False
) -> tuple[str, ...]:
    """``self``, 12-digit ids and account aliases as account ids. An alias no account has is
    ``InvalidUserID.Malformed`` unless EC2 knows it; owners that resolve to nobody give
    ``("",)``, which matches nothing. With ``amazon_images`` (kiln serve --amazon-images),
    ``amazon`` is the system account ``kiln``, whose images are the operator's base images.
    ``aws-marketplace`` is every account the operator verified (docs/community.md)."""
    out: list[str] = []
    for o in owners:
        if o == "amazon" and amazon_images:
            out.append(SYSTEM_ACCOUNT_ID)
        elif o == VERIFIED_PROVIDER_ALIAS:
            out.extend(cat_accounts.verified_account_ids(tx))
        elif o == "self":
            out.append(caller.account_id)
        elif ACCOUNT_RE.match(o):
            out.append(o)
        else:
            acct = cat_accounts.account_by_alias(tx, o)
            if acct is not None:
                out.append(acct.account_id)
            elif o not in WELL_KNOWN_ALIASES:
                raise KilnError(errors.InvalidUserIDMalformed, f'Invalid user id: "{o}"')
    return tuple(out) or ("",)
