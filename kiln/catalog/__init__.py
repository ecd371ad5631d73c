"""The catalog: SQLAlchemy 2 models, alembic migrations and repository functions.

The only package that imports SQLAlchemy. Open it with :func:`open_catalog`; run repository
functions (``kiln.catalog.images.register_image(tx, ...)`` …) inside ``catalog.read()`` or
``catalog.write()``. Records in and out are the frozen dataclasses of :mod:`kiln.catalog.records`.
"""

from kiln.catalog.catalog import Catalog, Conflict, Tx, open_catalog
from kiln.catalog.records import SYSTEM_ACCOUNT_ALIAS, SYSTEM_ACCOUNT_ID
from kiln.catalog.sealing import SealError

__all__ = [
    "Catalog",
    "Conflict",
    "Tx",
    "open_catalog",
    "SealError",
    "SYSTEM_ACCOUNT_ID",
    "SYSTEM_ACCOUNT_ALIAS",
]
