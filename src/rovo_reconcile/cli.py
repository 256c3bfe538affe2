"""The command line: parse, call one core function, print, return an exit code.

`run` is the one place that turns exceptions into messages and exit codes.
Heavy libraries (pydantic, jsonschema, ruamel.yaml, httpx) are imported inside
the commands, so `--help` starts fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import click

from rovo_reconcile import __version__
from rovo_reconcile.errors import EXIT_ERROR, EXIT_OK, EXIT_USAGE, RovoError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["main", "run"]

F = TypeVar("F", bound=Callable[..., Any])


def _as_path(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Path | None:
    from pathlib import Path

    return Path(value) if value is not None else None


def today(now: date | None) -> date:
    """--now, else $ROVO_RECONCILE_NOW, else the local date: the day expiry dates are compared with."""
    return now or date.today()


now_option = click.option(
    "--now",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    envvar="ROVO_RECONCILE_NOW",
    callback=lambda _ctx, _param, value: value.date() if value is not None else None,
    help="Pin today's date (YYYY-MM-DD) for expiry dates [default: $ROVO_RECONCILE_NOW or today].",
)


def target_options(command: F) -> F:
    """--target, --api-url, --api-key-file, --sandbox-db and --concurrency (DESIGN.md section 4)."""
    options = [
        click.option(
            "--target",
            type=click.Choice(["sandbox", "atlassian"]),
            default=None,
            help="Where live state lives [default: sandbox, or $ROVO_RECONCILE_TARGET].",
        ),
        click.option(
            "--api-url",
            default=None,
            metavar="URL",
            help="Admin API base URL for the atlassian target [default: $ROVO_RECONCILE_API_URL "
            "or https://api.atlassian.com]; implies --target atlassian.",
        ),
        click.option(
            "--api-key-file",
            type=click.Path(dir_okay=False),
            callback=_as_path,
            default=None,
            help="File holding the Admin API key [default: $ATLASSIAN_ADMIN_API_KEY].",
        ),
        click.option(
            "--sandbox-db",
            type=click.Path(dir_okay=False),
            callback=_as_path,
            default=None,
            help="SQLite file of the sandbox target [default: .rovo-reconcile/sandbox.db].",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 64),
            default=8,
            show_default=True,
            help="Cap on API requests in flight.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


class _LazyGroup(click.Group):
    """A group whose heavier subcommands are imported only when run (start-up time)."""

    lazy: ClassVar[dict[str, tuple[str, str]]] = {
        "emulator": (
            "rovo_reconcile.emulator.command:emulator",
            "Run a local emulator of the Atlassian Admin API.",
        ),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            import importlib

            module, _, attribute = self.lazy[cmd_name][0].partition(":")
            command: click.Command = getattr(importlib.import_module(module), attribute)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(name) for name in self.list_commands(ctx))
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy:
                rows.append((name, self.lazy[name][1]))
            elif (command := super().get_command(ctx, name)) is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", prog_name="rovo-reconcile")
def cli() -> None:
    """Atlassian Rovo MCP server settings and IP allowlists as code.

    Validate YAML policies, plan them against a live organization, apply them
    safely, and report drift. Exit codes: 0 ok, 1 error, 2 changes pending or
    drift, 3 refused by a safety guard, 64 usage error.
    """


@cli.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="Report format; github prints workflow annotations.",
)
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1).")
@now_option
def validate(paths: tuple[str, ...], fmt: str, strict: bool, now: date | None) -> int:
    """Check policy files (directories are searched recursively).

    Exit 0 when valid, 1 when any file has an error (or a warning, with --strict).
    """
    from rovo_reconcile.loader import load_policies
    from rovo_reconcile.render.report import render_report

    result = load_policies(paths, today(now))
    click.echo(render_report(result, fmt, strict=strict), nl=False)
    failed = result.errors > 0 or (strict and result.warnings > 0)
    return EXIT_ERROR if failed else EXIT_OK


@cli.command()
def schema() -> int:
    """Print the policy JSON Schema (2020-12)."""
    from rovo_reconcile.schema import schema_text

    click.echo(schema_text(), nl=False)
    return EXIT_OK


@cli.command()
@click.option("--org", "org_id", required=True, metavar="ID", help="Atlassian organization id.")
@target_options
@click.option(
    "--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True
)
def show(
    org_id: str,
    target: str | None,
    api_url: str | None,
    api_key_file: Path | None,
    sandbox_db: Path | None,
    concurrency: int,
    fmt: str,
) -> int:
    """Print the normalised live state of one organization (read-only).

    The output has the shape of a policy file (org, mcp, ipAllowlists) plus a
    read-only `live` section: the target, policy ids, per-app applicationStatus.
    """
    import asyncio

    from rovo_reconcile.live_state import read_live
    from rovo_reconcile.render.live import render_live
    from rovo_reconcile.targets import resolve_target

    where = resolve_target(target, api_url, api_key_file, sandbox_db)
    result = asyncio.run(read_live(where, [org_id], concurrency=concurrency))
    org = result.org(org_id)
    for note in org.notes:
        click.echo(f"rovo-reconcile: note: {note}", err=True)
    click.echo(render_live(org, where.label, fmt), nl=False)
    click.echo(
        f"rovo-reconcile: read org {org_id} from {where.label} in {result.requests} requests",
        err=True,
    )
    return EXIT_OK


def run(argv: Sequence[str]) -> int:
    """Run the CLI and return its exit code; never lets a traceback reach the user."""
    try:
        result = cli.main(args=list(argv), prog_name="rovo-reconcile", standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("rovo-reconcile: aborted", err=True)
        return EXIT_ERROR
    except click.ClickException as e:
        e.show()
        return EXIT_USAGE
    except RovoError as e:
        click.echo(f"rovo-reconcile: error: {e}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("rovo-reconcile: interrupted", err=True)
        return 130
    except Exception as e:  # the last line of defence: a bug, reported without a traceback
        if os.environ.get("ROVO_RECONCILE_DEBUG"):
            raise
        click.echo(
            f"rovo-reconcile: internal error: {type(e).__name__}: {e}\n"
            "This is a bug; set ROVO_RECONCILE_DEBUG=1 to see the traceback and please report it.",
            err=True,
        )
        return EXIT_ERROR
    return result if isinstance(result, int) else EXIT_OK


def main() -> None:
    sys.exit(run(sys.argv[1:]))
