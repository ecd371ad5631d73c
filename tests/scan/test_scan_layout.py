"""kiln/scan reads disks and nothing else: it never imports the rules, the catalog or the HTTP
edge (docs/architecture.md), so the bench and any tool can scan a raw file with it alone."""

from __future__ import annotations

import ast
from pathlib import Path

SCAN = Path(__file__).resolve().parents[2] / "kiln" / "scan"
FORBIDDEN = ("kiln.services", "kiln.catalog", "kiln.aws", "kiln.ec2", "kiln.cli", "sqlalchemy")


def test_scan_imports_no_rules_catalog_or_edge() -> None:
    found = []
    for path in sorted(SCAN.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [f"{path.name}: {n}" for n in names if n.startswith(FORBIDDEN)]
    assert found == []
