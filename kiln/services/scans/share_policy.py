"""The sharing policy "no public share with a critical finding" (docs/scan.md#sharing-policy):
an operator setting, ``kiln serve --refuse-public-with-critical-findings``. With it on, an
image becomes public (ModifyImageAttribute adding ``group=all``) only if its latest scan is
``scanned`` and has no critical finding; an image never scanned, or unscanned, is refused too."""

from __future__ import annotations

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import scans as cat
from kiln.catalog.records import ImageRecord
from kiln.errors import KilnError
from kiln.scan.scanner import SCANNED
from kiln.services.context import Services


def check_public_share_findings(tx: Tx, services: Services, image: ImageRecord) -> None:
    """Before ``image`` becomes public. :raises KilnError: OperationNotPermitted."""
    if not services.refuse_public_with_critical_findings:
        return
    scan = cat.get_image_scan(tx, image.image_id)
    if scan is None or scan.status != SCANNED:
        state = "has not been scanned" if scan is None else "is unscanned"
        raise KilnError(
            errors.OperationNotPermitted,
            f"You can't publicly share {image.image_id} because it {state}: this region "
            "refuses public images without a scan free of critical findings.",
        )
    critical = [f.check_id for f in scan.findings if f.severity == "critical"]
    if critical:
        raise KilnError(
            errors.OperationNotPermitted,
            f"You can't publicly share {image.image_id} because its scan has critical "
            f"findings: {', '.join(sorted(set(critical)))}.",
        )
