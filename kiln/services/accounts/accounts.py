"""Accounts and access keys: creation rules and the credential lookup SigV4 needs."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from kiln import errors
from kiln.catalog import Catalog, Conflict, Tx
from kiln.catalog import accounts as cat
from kiln.catalog.records import AccessKeyRecord, AccountRecord
from kiln.errors import KilnError
from kiln.services.accounts.owners import WELL_KNOWN_ALIASES
from kiln.services.validate import ACCOUNT_RE

log = logging.getLogger(__name__)

#: What an operator may choose (docs/regions.md#test-credentials): any 1-128 printable ASCII
#: characters, so test suites' ``test``/``test`` work; an access key id has no ``/`` or ``,``,
#: which delimit SigV4's ``Credential=KEY/date/region/service/aws4_request``. Keys Kiln makes
#: keep AWS's shape (``AKIA`` + 16, a 40-character secret).
KEY_ID_RE = re.compile(r"^[\x21-\x2b\x2d\x2e\x30-\x7e]{1,128}$")
SECRET_RE = re.compile(r"^[\x21-\x7e]{1,128}$")


@dataclass(frozen=True, slots=True)
class CreateAccountResult:
    account_id: str
    access_key_id: str
    secret_access_key: str


def create_account(
    catalog: Catalog,
    name: str,
    account_id: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
) -> CreateAccountResult:
    """A new account with one access key (generated unless both key parts are given)."""
    if not name.strip() or len(name) > 128:
        raise KilnError(errors.InvalidParameterValue, "account name must be 1-128 characters")
    if (access_key_id is None) != (secret_access_key is None):
        raise KilnError(
            errors.InvalidParameterCombination,
            "give both --access-key-id and --secret-access-key, or neither",
        )
    if account_id is not None and not ACCOUNT_RE.match(account_id):
        raise KilnError(errors.InvalidParameterValue, f"account id must be 12 digits: {account_id}")
    if access_key_id is not None and not KEY_ID_RE.match(access_key_id):
        raise KilnError(
            errors.InvalidParameterValue,
            "access key id must be 1-128 printable ASCII characters, without '/' or ','",
        )
    if secret_access_key is not None and not SECRET_RE.match(secret_access_key):
        raise KilnError(
            errors.InvalidParameterValue,
            "secret access key must be 1-128 printable ASCII characters",
        )
    key_id = access_key_id or cat.new_access_key_id()
    secret = secret_access_key or cat.new_secret_access_key()
    try:
        with catalog.write() as tx:
            acct = account_id or _free_account_id(catalog)
            if cat.get_account(tx, acct) is not None:
                raise KilnError(errors.InvalidParameterValue, f"account {acct} already exists")
            if cat.access_key_exists(tx, key_id):
                raise KilnError(errors.InvalidParameterValue, f"access key {key_id} already exists")
            cat.create_account(tx, acct, name)
            cat.create_access_key(tx, catalog.sealer, acct, key_id, secret)
    except Conflict as e:
        raise KilnError(errors.InvalidParameterValue, f"account or key already exists: {e}") from e
    log.info("created account %s (%s) with key %s", acct, name, key_id)
    return CreateAccountResult(acct, key_id, secret)


def _free_account_id(catalog: Catalog) -> str:
    with catalog.read() as tx:
        for _ in range(100):
            candidate = cat.new_account_id()
            if cat.get_account(tx, candidate) is None:
                return candidate
    raise KilnError(errors.InternalError, "could not find a free account id")


def lookup_access_key(catalog: Catalog, access_key_id: str) -> AccessKeyRecord | None:
    with catalog.read() as tx:
        return cat.lookup_access_key(tx, catalog.sealer, access_key_id)


#: An owner alias (docs/community.md): 3-63 of lowercase letters, digits and single hyphens,
#: starting and ending with a letter or digit, not only digits (Owners reads 12 digits as an id).
ALIAS_RE = re.compile(r"^(?!\d+$)[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]$")
#: Words Owners / ExecutableUsers already give a meaning to.
RESERVED_ALIASES = frozenset({"self", "all", "none", *WELL_KNOWN_ALIASES})


def _known_account(tx: Tx, account_id: str) -> AccountRecord:
    if not ACCOUNT_RE.match(account_id):
        raise KilnError(errors.InvalidParameterValue, f"account id must be 12 digits: {account_id}")
    acct = cat.get_account(tx, account_id)
    if acct is None:
        raise KilnError(errors.InvalidParameterValue, f"no account {account_id}")
    return acct


def set_account_verified(catalog: Catalog, account_id: str, verified: bool) -> AccountRecord:
    """Mark ``account_id`` a verified provider, or no longer one (``kiln account verify`` /
    ``unverify``; docs/community.md). Idempotent."""
    with catalog.write() as tx:
        _known_account(tx, account_id)
        cat.set_verified(tx, account_id, verified)
        acct = _known_account(tx, account_id)
    log.info("account %s is %s", account_id, "verified" if verified else "not verified")
    return acct


def set_account_alias(catalog: Catalog, account_id: str, alias: str | None) -> AccountRecord:
    """Give ``account_id`` the owner alias ``alias`` (None: remove it; ``kiln account alias``)."""
    if alias is not None and (not ALIAS_RE.match(alias) or alias in RESERVED_ALIASES):
        raise KilnError(
            errors.InvalidParameterValue,
            f"alias {alias!r} must be 3-63 lowercase letters, digits and single hyphens, not "
            f"only digits, and none of {', '.join(sorted(RESERVED_ALIASES))}",
        )
    try:
        with catalog.write() as tx:
            _known_account(tx, account_id)
            holder = cat.account_by_alias(tx, alias) if alias is not None else None
            if holder is not None and holder.account_id != account_id:
                raise KilnError(
                    errors.InvalidParameterValue,
                    f"alias {alias} is taken by account {holder.account_id}",
                )
            cat.set_alias(tx, account_id, alias)
            acct = _known_account(tx, account_id)
    except Conflict as e:
        raise KilnError(errors.InvalidParameterValue, f"alias {alias} is taken") from e
    log.info("account %s alias %s", account_id, alias)
    return acct
