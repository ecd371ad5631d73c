"""Handler of GetImageFindings: the findings of an image's latest offline scan
(docs/scan.md). Rule: kiln/services/scans/scans.py."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from kiln.aws.context import RequestContext
from kiln.ec2.snapshots import required
from kiln.ec2.tags import Params, caller_of, flag, opt_int, opt_str, services_of
from kiln.services.scans import scans


def get_image_findings(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    page = scans.get_image_findings(
        services_of(ctx),
        caller_of(ctx),
        scans.GetImageFindingsRequest(
            image_id=required(params, "ImageId"),
            max_results=opt_int(params, "MaxResults"),
            next_token=opt_str(params, "NextToken"),
            dry_run=flag(params, "DryRun"),
        ),
    )
    return {
        "ImageFindings": [
            {
                "Title": f"{f.check_id}: {f.title}",
                "SeverityLabel": f.severity,
                "Paths": list(f.paths) or None,
                "SnapshotId": page.scan.snapshot_id,
                "FirstObservedAt": datetime.fromisoformat(f.first_observed_at),
                "UpdatedAt": datetime.fromisoformat(page.scan.scanned_at),
            }
            for f in page.findings
        ],
        "NextToken": page.next_token,
    }
