"""docs/api.md names every image and tag action in ACTIONS and every error code they raise."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from kiln.ec2.actions import ACTIONS

ROOT = Path(__file__).resolve().parents[2]
OWN_MODULES = ("kiln.ec2.images", "kiln.ec2.tags")
RULES = [
    "services/images/images.py",
    "services/images/describe_images.py",
    "services/images/image_attributes.py",
    "services/images/cancel_image_launch_permission.py",
    "services/images/access.py",
    "services/images/states.py",
    "services/tags/tags.py",
    "services/images/block_devices.py",
    "services/images/bundles.py",
    "services/validate.py",
]


def _codes_raised(paths: Iterable[Path], name: str = r"[A-Za-z]+") -> set[str]:
    """The EC2/KMS/... codes of the ``errors.NAME`` the files at ``paths`` mention."""
    import kiln.errors as errors

    used: set[str] = set()
    for path in paths:
        used |= set(re.findall(rf"errors\.({name})", path.read_text()))
    return {
        getattr(errors, n).code
        for n in used
        if isinstance(getattr(errors, n, None), errors.ErrorCode)
    }


def test_every_image_and_tag_action_is_documented() -> None:
    doc = (ROOT / "docs" / "api.md").read_text()
    mine = [name for name, handler in ACTIONS.items() if handler.__module__ in OWN_MODULES]
    assert len(mine) >= 15
    assert [name for name in mine if name not in doc] == []


def test_every_error_code_the_image_rules_raise_is_documented() -> None:

    doc = (ROOT / "docs" / "api.md").read_text()
    codes = _codes_raised(ROOT / "kiln" / name for name in RULES)
    assert len(codes) >= 15
    assert sorted(c for c in codes if c not in doc) == []


def test_every_action_of_every_service_is_documented() -> None:
    """Each service's ACTIONS (kiln/<service>/actions.py) appear in that service's docs."""
    from kiln.imagebuilder.actions import ACTIONS as IMAGEBUILDER_ACTIONS
    from kiln.kms.actions import ACTIONS as KMS_ACTIONS
    from kiln.rbin.actions import ACTIONS as RBIN_ACTIONS
    from kiln.s3.actions import ACTIONS as S3_ACTIONS
    from kiln.ssm.actions import ACTIONS as SSM_ACTIONS
    from kiln.sts.actions import ACTIONS as STS_ACTIONS

    services = {
        "ec2": (
            ACTIONS,
            [
                "api.md",
                "jobs.md",
                "instances.md",
                "networks.md",
                "recycle-bin.md",
                "lineage.md",
                "governance.md",
                "scan.md",
            ],
        ),
        "rbin": (RBIN_ACTIONS, ["recycle-bin.md"]),
        "imagebuilder": (IMAGEBUILDER_ACTIONS, ["imagebuilder.md"]),
        "sts": (STS_ACTIONS, ["sts.md"]),
        "kms": (KMS_ACTIONS, ["kms.md"]),
        "ssm": (SSM_ACTIONS, ["ssm.md"]),
        "s3": (S3_ACTIONS, ["s3.md"]),
    }
    for name, (actions, docs) in services.items():
        doc = "\n".join((ROOT / "docs" / d).read_text() for d in docs)
        assert actions, name
        assert [a for a in actions if a not in doc] == [], name


def test_every_error_code_the_kms_rules_raise_is_documented() -> None:

    doc = (ROOT / "docs" / "kms.md").read_text()
    codes = _codes_raised(
        ROOT / "kiln" / "services" / "keys" / name
        for name in ("kms_keys.py", "kms_state.py", "kms_grants.py", "kms_access.py")
    )
    assert len(codes) >= 8
    assert sorted(c for c in codes if c not in doc) == []


def test_every_error_code_the_parameter_and_alias_rules_raise_is_documented() -> None:

    docs = {
        "ssm.md": sorted((ROOT / "kiln" / "services" / "parameters").glob("*.py")),
        "aliases.md": [ROOT / "kiln" / "services" / "images" / n for n in ("aliases.py",)],
    }
    for doc_name, files in docs.items():
        doc = (ROOT / "docs" / doc_name).read_text()
        codes = _codes_raised(files)
        assert len(codes) >= 3, doc_name
        assert sorted(c for c in codes if c not in doc) == [], doc_name


def test_every_error_code_the_s3_rules_raise_is_documented() -> None:

    doc = (ROOT / "docs" / "s3.md").read_text()
    paths = [*(ROOT / "kiln" / "services" / "buckets").glob("*.py")]
    paths += [ROOT / "kiln" / "aws" / name for name in ("payload.py", "chunked.py")]
    paths += [ROOT / "kiln" / "runtime" / "bucket_files.py"]
    paths += [p for p in (ROOT / "kiln" / "s3").glob("*.py") if p.name != "service.py"]
    codes = _codes_raised(paths)
    spelled = {"AuthFailure", "InvalidRequest"}  # SignatureDoesNotMatch; documented as is
    assert len(codes) >= 15
    assert sorted(c for c in codes - spelled if c not in doc) == []


def test_every_error_code_the_lifecycle_rules_raise_is_documented() -> None:

    doc = (ROOT / "docs" / "lifecycle.md").read_text()
    codes = _codes_raised(sorted((ROOT / "kiln" / "services" / "lifecycle").glob("*.py")))
    assert len(codes) >= 2
    assert sorted(c for c in codes if c not in doc) == []
    assert "## Differences from AWS" in doc


def test_every_error_code_the_recycle_bin_and_lineage_rules_raise_is_documented() -> None:

    pages = {
        "recycle-bin.md": [
            *(ROOT / "kiln" / "services" / "recyclebin").glob("*.py"),
            ROOT / "kiln" / "rbin" / "rules.py",
        ],
        "lineage.md": [
            ROOT / "kiln" / "services" / "images" / "lineage.py",
            ROOT / "kiln" / "services" / "images" / "usage_reports.py",
        ],
    }
    for doc_name, paths in pages.items():
        doc = (ROOT / "docs" / doc_name).read_text()
        codes = _codes_raised(paths)
        assert len(codes) >= 4, doc_name
        assert sorted(c for c in codes if c not in doc) == [], doc_name


def test_every_error_code_the_governance_and_quota_rules_raise_is_documented() -> None:

    pages = {
        "governance.md": [
            ROOT / "kiln" / "services" / "images" / "block_public_access.py",
            ROOT / "kiln" / "services" / "images" / "allowed_images.py",
        ],
        "quotas.md": [ROOT / "kiln" / "services" / "accounts" / "quotas.py"],
    }
    for doc_name, paths in pages.items():
        doc = (ROOT / "docs" / doc_name).read_text()
        codes = _codes_raised(paths)
        assert len(codes) >= 2, doc_name
        assert sorted(c for c in codes if c not in doc) == [], doc_name
        assert "## Differences from AWS" in doc, doc_name


def test_every_error_code_the_marketplace_rules_raise_is_documented() -> None:

    doc = (ROOT / "docs" / "marketplace.md").read_text()
    codes = _codes_raised(sorted((ROOT / "kiln" / "services" / "marketplace").glob("*.py")))
    assert len(codes) >= 4
    assert sorted(f"`{c}`" for c in codes if f"`{c}`" not in doc) == []
    assert "## Differences from AWS" in doc


def test_every_scan_check_and_error_code_is_documented() -> None:
    """docs/scan.md lists every check id of kiln/scan/checks.py and every error code the scan
    rules raise."""
    from datetime import date

    from kiln.scan.checks import checks

    doc = (ROOT / "docs" / "scan.md").read_text()
    assert [c.check_id for c in checks(date.today()) if f"`{c.check_id}`" not in doc] == []
    codes = _codes_raised((ROOT / "kiln" / "services" / "scans").glob("*.py"))
    assert len(codes) >= 4
    assert sorted(c for c in codes if c not in doc) == []


def test_every_error_code_the_imagebuilder_rules_raise_is_documented() -> None:

    doc = (ROOT / "docs" / "imagebuilder.md").read_text()
    paths = [*(ROOT / "kiln" / "services" / "imagebuilder").glob("*.py")]
    paths += [*(ROOT / "kiln" / "imagebuilder").glob("*.py")]
    codes = _codes_raised(paths, r"Imagebuilder[A-Za-z]+")
    assert len(codes) >= 4
    assert sorted(c for c in codes if c not in doc) == []
    assert "## Differences from AWS" in doc
