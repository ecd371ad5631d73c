"""Every job kind Kiln runs: the one registry (a job row's ``kind`` -> how to run it).

The server, the CLI and the tests hand this to their job queue (kiln/app.py build_services);
a new kind is added here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping

from kiln.services.context import JobKind
from kiln.services.images import copy_image, create_image
from kiln.services.snapshots import copy_snapshot, create_snapshot, volumes
from kiln.services.tasks import export_image, import_image


def _merge(*tables: Mapping[str, JobKind]) -> dict[str, JobKind]:
    merged: dict[str, JobKind] = {}
    for table in tables:
        for name, kind in table.items():
            if name in merged:
                raise RuntimeError(f"job kind {name!r} is registered twice")
            merged[name] = kind
    return merged


JOB_KINDS: Mapping[str, JobKind] = _merge(
    import_image.JOB_KINDS,  # import-image, import-snapshot
    export_image.JOB_KINDS,  # export-image
    copy_snapshot.JOB_KINDS,  # copy-snapshot
    copy_image.JOB_KINDS,  # copy-image
    volumes.JOB_KINDS,  # create-volume
    create_snapshot.JOB_KINDS,  # create-snapshot
    create_image.JOB_KINDS,  # create-image
)
