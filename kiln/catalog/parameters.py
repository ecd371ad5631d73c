"""SSM parameters: one row per version, the current one marked ``latest``.

A SecureString's value is sealed with the server master key (kiln/catalog/sealing.py), bound to
its account, region, name and version, so a sealed value copied to another row does not open.
Two writers of one parameter race on the primary key (account, region, name, version): the loser
fails at commit with :class:`kiln.catalog.Conflict`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.records import ParameterRecord
from kiln.catalog.sealing import Sealer

SECURE = "SecureString"


@dataclass(frozen=True, slots=True)
class NewParameterVersion:
    type: str
    value: str
    description: str | None
    key_id: str | None
    allowed_pattern: str | None
    tier: str
    data_type: str
    modified: str
    modified_user: str


def _context(account_id: str, region: str, name: str, version: int) -> str:
    return f"ssm:{account_id}:{region}:{version}:{name}"


def _record(r: models.ParameterVersion, sealer: Sealer) -> ParameterRecord:
    value = r.value or ""
    if r.value_sealed is not None:
        ctx = _context(r.account_id, r.region, r.name, r.version)
        value = sealer.unseal(r.value_sealed, ctx).decode()
    return ParameterRecord(
        r.account_id,
        r.region,
        r.name,
        r.version,
        r.type,
        value,
        r.value_sealed,
        r.description,
        r.key_id,
        r.allowed_pattern,
        r.tier,
        r.data_type,
        r.modified,
        r.modified_user,
    )


def _where(account_id: str, region: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    p = models.ParameterVersion
    return (p.account_id == account_id, p.region == region)


def current_parameter(
    tx: Session, sealer: Sealer, account_id: str, region: str, name: str
) -> ParameterRecord | None:
    p = models.ParameterVersion
    row = tx.scalars(
        select(p).where(*_where(account_id, region), p.name == name, p.latest.is_(True))
    ).first()
    return _record(row, sealer) if row else None


def parameter_version(
    tx: Session, sealer: Sealer, account_id: str, region: str, name: str, version: int
) -> ParameterRecord | None:
    row = tx.get(models.ParameterVersion, (account_id, region, name, version))
    return _record(row, sealer) if row else None


def parameter_history(
    tx: Session, sealer: Sealer, account_id: str, region: str, name: str
) -> list[ParameterRecord]:
    """Every version of the parameter, oldest first ([] if it does not exist)."""
    p = models.ParameterVersion
    rows = tx.scalars(
        select(p).where(*_where(account_id, region), p.name == name).order_by(p.version)
    )
    return [_record(r, sealer) for r in rows]


def current_parameters(
    tx: Session,
    sealer: Sealer,
    account_id: str,
    region: str,
    prefix: str | None = None,
    names: Sequence[str] | None = None,
) -> list[ParameterRecord]:
    """The current version of each of the account's parameters in ``region``, by name; only
    names starting with ``prefix`` (exactly, case counts) or among ``names`` if given."""
    p = models.ParameterVersion
    query = select(p).where(*_where(account_id, region), p.latest.is_(True))
    if prefix:
        query = query.where(p.name.startswith(prefix, autoescape=True))
    if names is not None:
        query = query.where(p.name.in_(list(names)))
    rows = tx.scalars(query.order_by(p.name))
    return [_record(r, sealer) for r in rows if prefix is None or r.name.startswith(prefix)]


def put_parameter_version(
    tx: Session,
    sealer: Sealer,
    account_id: str,
    region: str,
    name: str,
    version: int,
    new: NewParameterVersion,
) -> ParameterRecord:
    """Add ``version`` of the parameter and make it the current one."""
    p = models.ParameterVersion
    tx.execute(
        update(p)
        .where(*_where(account_id, region), p.name == name, p.latest.is_(True))
        .values(latest=False)
    )
    ctx = _context(account_id, region, name, version)
    secure = new.type == SECURE
    row = models.ParameterVersion(
        account_id=account_id,
        region=region,
        name=name,
        version=version,
        latest=True,
        type=new.type,
        value=None if secure else new.value,
        value_sealed=sealer.seal(new.value.encode(), ctx) if secure else None,
        description=new.description,
        key_id=new.key_id,
        allowed_pattern=new.allowed_pattern,
        tier=new.tier,
        data_type=new.data_type,
        modified=new.modified,
        modified_user=new.modified_user,
    )
    tx.add(row)
    tx.flush()
    return _record(row, sealer)


def delete_parameter(tx: Session, account_id: str, region: str, name: str) -> bool:
    """Delete every version; False if the parameter did not exist."""
    p = models.ParameterVersion
    result = tx.execute(delete(p).where(*_where(account_id, region), p.name == name))
    return bool(getattr(result, "rowcount", 0))
