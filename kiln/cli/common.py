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
from kiln.errors import KilnError

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)


def data_dir_option(fn: F) -> F:
    return click.option(
        "--data-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="Data directory (default: $KILN_DATA_DIR, else ~/.local/share/kiln).",
    )(fn)


_JSON_META = "kiln.json"


def _json_flag(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    """A command's ``--json``, also on when a group above it was given ``--json``."""
    return bool(value or ctx.meta.get(_JSON_META, False))


def json_option(fn: F) -> F:
    """``--json`` for a command: its value reaches the function as ``as_json``."""
    return click.option(
        "--json", "as_json", is_flag=True, callback=_json_flag, help="Machine-readable JSON output."
    )(fn)


def _json_group_flag(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[_JSON_META] = True  # ctx.meta is shared by the sub-commands' contexts


def add_group_json(group: click.Group) -> None:
    """Give ``group`` and every group below it a ``--json`` that turns on the --json of the
    command finally run (``kiln --json account ls``, ``kiln account --json ls``). Commands
    themselves declare theirs with :func:`json_option`."""
    if not any("--json" in p.opts for p in group.params):
        group.params.append(
            click.Option(
                ["--json"],
                is_flag=True,
                expose_value=False,
                callback=_json_group_flag,
                help="Machine-readable JSON output (for the sub-command run).",
            )
        )
    for sub in group.commands.values():
        if isinstance(sub, click.Group):
            add_group_json(sub)


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
        except KilnError as e:
            fail(f"{e.code.code}: {e.message}")
        except FileNotFoundError as e:
            fail(f"no such file: {e.filename or e}")
        except PermissionError as e:
            fail(f"permission denied: {e.filename or e}")
        except OSError as e:
            fail(f"{e.strerror or e}" + (f": {e.filename}" if e.filename else ""))
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # usage errors: click prints them (one line and the usage, exit 2)
        except Exception as e:  # a bug or an unexpected failure: still one line, no traceback
            log.debug("unexpected error", exc_info=True)
            text = " ".join(str(e).split())
            fail(f"{type(e).__name__}: {text} (KILN_LOG_LEVEL=debug shows the traceback)")

    return wrapper  # type: ignore[return-value]  # functools.wraps keeps the signature


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False, default=str))
