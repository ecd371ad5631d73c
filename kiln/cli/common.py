"""Shared pieces of the CLI contract: --data-dir, --json, one-line errors, exit codes."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from kiln.config import default_data_dir
from kiln.errors import Ec2Error

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)


def data_dir_option(fn: F) -> F:
    return click.option(
        "--data-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="Data directory (default: $KILN_DATA_DIR, else ~/.local/share/kiln).",
    )(fn)


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")(fn)


def resolve_data_dir(value: Path | None) -> Path:
    return value if value is not None else default_data_dir()


def fail(message: str, code: int = 1) -> None:
    """Print one line on stderr and exit non-zero."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def cli_errors(fn: F) -> F:
    """Turn every expected failure into one line on stderr and exit 1; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Ec2Error as e:
            fail(f"{e.code.code}: {e.message}")
        except FileNotFoundError as e:
            fail(f"no such file: {e.filename or e}")
        except PermissionError as e:
            fail(f"permission denied: {e.filename or e}")
        except OSError as e:
            fail(f"{e.strerror or e}" + (f": {e.filename}" if e.filename else ""))
        except KeyboardInterrupt:
            fail("interrupted", 130)

    return wrapper  # type: ignore[return-value]  # functools.wraps keeps the signature


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False, default=str))
