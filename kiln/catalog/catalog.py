"""The Catalog object: one engine, its sealer, and read / write transactions.

Repository functions live in the sibling modules (``accounts``, ``images``, ``snapshots``,
``tags``, ``jobs``, ``kms``) and take the transaction (a SQLAlchemy ``Session``) as their first
argument. Callers outside this package never build queries; they call those functions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from kiln.catalog import models
from kiln.catalog.engine import make_engine, migrate
from kiln.catalog.records import utc_now
from kiln.catalog.sealing import Sealer, load_or_create_master_key

log = logging.getLogger(__name__)

Tx = Session


class Conflict(Exception):
    """A uniqueness rule of the catalog was violated (e.g. a duplicate image name)."""


class Catalog:
    def __init__(self, engine: Engine, sealer: Sealer) -> None:
        self.engine = engine
        self.sealer = sealer
        self.dialect = engine.dialect.name
        self._read = sessionmaker(bind=engine, expire_on_commit=False)
        self._write = sessionmaker(
            bind=engine.execution_options(kiln_write=True), expire_on_commit=False
        )

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read transaction (rolled back at the end)."""
        with self._read() as tx:
            yield tx

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: committed if the block returns, rolled back if it raises.

        A uniqueness violation at commit becomes :class:`Conflict`.
        """
        with self._write() as tx:
            try:
                yield tx
                tx.commit()
            except IntegrityError as e:
                tx.rollback()
                raise Conflict(str(e.orig)) from e
            except BaseException:
                tx.rollback()
                raise

    def ensure_regions(self, names: Iterable[str]) -> None:
        """Record the regions not yet known. Processes starting together may race to insert
        the same region (PostgreSQL does not serialise them as SQLite's immediate
        transactions do): the loser reads again and finds it there."""
        wanted = list(names)
        for attempt in range(3):
            try:
                with self.write() as tx:
                    have = set(tx.scalars(select(models.Region.name)))
                    for name in wanted:
                        if name not in have:
                            tx.add(models.Region(name=name, created=utc_now()))
                return
            except Conflict:
                if attempt == 2:
                    raise

    def close(self) -> None:
        self.engine.dispose()


def open_catalog(url: str, master_key_path: Path, regions: Iterable[str] = ()) -> Catalog:
    """Open (and migrate) the catalog at ``url``; secrets are sealed with the key file."""
    engine = make_engine(url)
    migrate(engine)
    catalog = Catalog(engine, Sealer(load_or_create_master_key(master_key_path)))
    catalog.ensure_regions(regions)
    log.info("catalog open: %s", engine.url.render_as_string(hide_password=True))
    return catalog
