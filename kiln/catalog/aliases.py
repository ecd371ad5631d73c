"""Image aliases (``kiln alias``), public parameter maps (``kiln parameter map``) and the images
of a family: what kiln/services/images/families.py and aliases.py read and write."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.records import ImageAliasRecord, PublicParameterRecord, utc_now


def _alias(r: models.ImageAlias) -> ImageAliasRecord:
    return ImageAliasRecord(r.region, r.alias, r.target, r.created)


def set_image_alias(tx: Session, region: str, alias: str, target: str) -> ImageAliasRecord:
    """Make ``alias`` stand for ``target`` in ``region`` (replacing what it stood for)."""
    row = tx.get(models.ImageAlias, (region, alias))
    if row is None:
        row = models.ImageAlias(region=region, alias=alias, target=target, created=utc_now())
        tx.add(row)
    else:
        row.target = target
    tx.flush()
    return _alias(row)


def get_image_alias(tx: Session, region: str, alias: str) -> ImageAliasRecord | None:
    row = tx.get(models.ImageAlias, (region, alias))
    return _alias(row) if row else None


def list_image_aliases(tx: Session, region: str | None = None) -> list[ImageAliasRecord]:
    """Every alias (of one region if given), by region and alias."""
    a = models.ImageAlias
    query = select(a)
    if region is not None:
        query = query.where(a.region == region)
    return [_alias(r) for r in tx.scalars(query.order_by(a.region, a.alias))]


def delete_image_alias(tx: Session, region: str, alias: str) -> bool:
    a = models.ImageAlias
    result = tx.execute(delete(a).where(a.region == region, a.alias == alias))
    return bool(getattr(result, "rowcount", 0))


def _public(r: models.PublicParameter) -> PublicParameterRecord:
    return PublicParameterRecord(r.name, r.family, r.created)


def set_public_parameter(tx: Session, name: str, family: str) -> PublicParameterRecord:
    row = tx.get(models.PublicParameter, name)
    if row is None:
        row = models.PublicParameter(name=name, family=family, created=utc_now())
        tx.add(row)
    else:
        row.family = family
    tx.flush()
    return _public(row)


def get_public_parameter(tx: Session, name: str) -> PublicParameterRecord | None:
    row = tx.get(models.PublicParameter, name)
    return _public(row) if row else None


def list_public_parameters(tx: Session) -> list[PublicParameterRecord]:
    p = models.PublicParameter
    return [_public(r) for r in tx.scalars(select(p).order_by(p.name))]


def delete_public_parameter(tx: Session, name: str) -> bool:
    p = models.PublicParameter
    result = tx.execute(delete(p).where(p.name == name))
    return bool(getattr(result, "rowcount", 0))


def family_images(
    tx: Session, region: str, owner_id: str, family: str
) -> list[tuple[str, str, str]]:
    """(image id, name, creation date) of the owner's available images in ``region`` whose
    name is ``family/<version>`` (exactly one more path segment)."""
    i = models.Image
    rows = tx.execute(
        select(i.image_id, i.name, i.creation_date).where(
            i.region == region,
            i.owner_id == owner_id,
            i.state == "available",
            i.name.startswith(family + "/", autoescape=True),
        )
    ).all()
    prefix = family + "/"  # SQLite's LIKE ignores case: the exact prefix is checked here
    return [
        (r[0], r[1], r[2])
        for r in rows
        if r[1].startswith(prefix) and r[1][len(prefix) :] and "/" not in r[1][len(prefix) :]
    ]


def family_names(tx: Session, region: str, owner_id: str) -> set[str]:
    """The families of the owner's available images in ``region`` (names with a ``/``)."""
    i = models.Image
    names = tx.scalars(
        select(i.name).where(
            i.region == region,
            i.owner_id == owner_id,
            i.state == "available",
            i.name.like("%/%"),
        )
    )
    return {n.rsplit("/", 1)[0] for n in names if n.rsplit("/", 1)[0] and n.rsplit("/", 1)[1]}
