"""The command line: parse, call one core function, print, return an exit code.

`run` is the one place that turns exceptions into messages and exit codes.
Heavy libraries (pydantic, jsonschema, ruamel.yaml, httpx) are imported inside
the commands, so `--help` starts fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from rovo_reconcile import __version__
from rovo_reconcile.errors import EXIT_ERROR, EXIT_OK, EXIT_USAGE, RovoError

__all__ = ["main", "run"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
def validate(paths: tuple[str, ...], fmt: str, strict: bool) -> int:
    """Check policy files (directories are searched recursively).

    Exit 0 when valid, 1 when any file has an error (or a warning, with --strict).
    """
    from rovo_reconcile.loader import load_policies
    from rovo_reconcile.render.report import render_report

    result = load_policies(paths)
    click.echo(render_report(result, fmt, strict=strict), nl=False)
    failed = result.errors > 0 or (strict and result.warnings > 0)
    return EXIT_ERROR if failed else EXIT_OK


@cli.command()
def schema() -> int:
    """Print the policy JSON Schema (2020-12)."""
    from rovo_reconcile.schema import schema_text

    click.echo(schema_text(), nl=False)
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
