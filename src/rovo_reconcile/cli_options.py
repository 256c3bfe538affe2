"""What the command modules share: the target, date and shard options, and loading
policies and ack files with their messages on stderr (`cli` and `github.command`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from pathlib import Path

    from rovo_reconcile.ack import AckSet
    from rovo_reconcile.policy.loader import LoadedPolicy
    from rovo_reconcile.targets import Target

__all__ = [
    "ack_option",
    "load_ack_file",
    "load_valid",
    "mcp_option",
    "now_option",
    "refuse_default_sandbox_in_ci",
    "shard_option",
    "target_options",
    "today",
]

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
    metavar="YYYY-MM-DD",
    callback=lambda _ctx, _param, value: value.date() if value is not None else None,
    help="Pin today's date for expiry dates [default: $ROVO_RECONCILE_NOW or today].",
)


def target_options(command: F) -> F:
    """--target, --api-url, --api-key-file, --sandbox-db, --concurrency and --timeout
    (DESIGN.md section 4)."""
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
            help="File holding the Admin API key (without it, the key comes from "
            "$ATLASSIAN_ADMIN_API_KEY).",
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
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True, max=3600),
            default=60.0,
            envvar="ROVO_RECONCILE_TIMEOUT",
            metavar="SECONDS",
            help="Longest one API request may take in all, answer included; a server that "
            "stalls or trickles ends the run there (exit 1) [default: $ROVO_RECONCILE_TIMEOUT or 60].",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


mcp_option = click.option(
    "--mcp",
    "mcp_mode",
    type=click.Choice(["auto", "api", "manual"]),
    default="auto",
    show_default=True,
    envvar="ROVO_RECONCILE_MCP",
    help="The Rovo MCP settings API: auto calls it and takes a 404 as 'not readable, manual "
    "steps'; api makes that 404 the org's error (exit 1); manual never calls it and lists "
    "every MCP setting as a manual step [env: ROVO_RECONCILE_MCP].",
)


shard_option = click.option(
    "--shard",
    default=None,
    metavar="K/N",
    help="Keep the K-th of N deterministic slices of the orgs (a CI matrix over thousands of orgs).",
)


def load_valid(paths: tuple[str, ...], day: date, shard: str | None) -> list[LoadedPolicy]:
    """Load policies for plan, apply and drift; any invalid file stops the run (exit 1)."""
    from rovo_reconcile.errors import PolicyInvalid, UsageError
    from rovo_reconcile.policy.loader import load_policies
    from rovo_reconcile.reconcile import parse_shard, select_shard
    from rovo_reconcile.render.report import render_report

    result = load_policies(paths, day, packed=True)
    if result.errors:
        click.echo(render_report(result, "text"), nl=False, err=True)
        raise PolicyInvalid("the policies are invalid; nothing was read or written")
    for problem in result.problems:
        click.echo(
            f"{problem.file}:{problem.line}:{problem.column}: warning: {problem.message}", err=True
        )
    if not result.policies:  # only baselines: nothing compared, so never "live matches"
        raise UsageError(
            f"no org policy files in {', '.join(paths)}: a baseline is planned only through "
            "the org files that extend it; give those"
        )
    return select_shard(result.policies, parse_shard(shard))


def load_ack_file(ack_file: str | None) -> AckSet:
    """The `--ack` file; a missing one means no acknowledgements, said once on stderr."""
    from pathlib import Path

    from rovo_reconcile.ack import AckSet, load_acks_if_present

    if ack_file is None:
        return AckSet(())
    from rovo_reconcile.errors import UsageError
    from rovo_reconcile.policy.files import special_kind

    kind = special_kind(Path(ack_file))
    if kind is not None:
        raise UsageError(f"--ack {ack_file}: this is {kind}, not an acknowledgement file")
    acks = load_acks_if_present(Path(ack_file))
    if acks is None:
        click.echo(
            f"rovo-reconcile: note: {ack_file} does not exist; no drift is acknowledged", err=True
        )
        return AckSet(())
    return acks


def refuse_default_sandbox_in_ci(where: Target) -> None:
    """DESIGN section 4: no apply to the default sandbox when CI=true and no --target was given,
    or a pipeline with a missing setting would report success while changing nothing."""
    import os

    from rovo_reconcile.errors import GuardRefused

    if (
        where.name == "sandbox"
        and not where.explicit
        and os.environ.get("CI", "").lower() == "true"
    ):
        raise GuardRefused(
            "refusing to apply to the default sandbox in CI (CI=true): a pipeline with a missing "
            "--target would report success while changing nothing; pass --target explicitly"
        )


ack_option = click.option(
    "--ack",
    "ack_file",
    default=None,
    metavar="ACK.yaml",
    help="Known drift, acknowledged until a date (a missing file acknowledges nothing).",
)
