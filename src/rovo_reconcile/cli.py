"""The command line: parse, call one core function, print, return an exit code.

`run` is the one place that turns exceptions into messages and exit codes.
Heavy libraries (pydantic, jsonschema, ruamel.yaml, httpx) are imported inside
the commands, so `--help` starts fast.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, ClassVar

import click

from rovo_reconcile import __version__
from rovo_reconcile.cli_options import (
    ack_option,
    load_ack_file,
    load_valid,
    mcp_option,
    now_option,
    refuse_default_sandbox_in_ci,
    shard_option,
    target_options,
    today,
)
from rovo_reconcile.errors import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    RovoError,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from contextlib import AbstractContextManager
    from pathlib import Path

    from rovo_reconcile.access.view import OrgView
    from rovo_reconcile.api.live import LiveOrg
    from rovo_reconcile.apply import ApplyResult
    from rovo_reconcile.mcp_state import McpMode
    from rovo_reconcile.plan import Plan
    from rovo_reconcile.policy.loader import LoadedPolicy
    from rovo_reconcile.progress import OrgProgress
    from rovo_reconcile.reconcile import PlanRun
    from rovo_reconcile.targets import Target

__all__ = ["check_reviewed", "main", "read_plan_file", "run"]

PROG_NAME = "rovo-reconcile"
COMPLETE_VAR = "_ROVO_RECONCILE_COMPLETE"
"""The variable click's completion scripts set to ask for completions (from PROG_NAME)."""


class _LazyGroup(click.Group):
    """A group whose heavier subcommands are imported only when run (start-up time)."""

    lazy: ClassVar[dict[str, tuple[str, str]]] = {
        "emulator": (
            "rovo_reconcile.emulator.command:emulator",
            "Run a local emulator of the Atlassian Admin API.",
        ),
        "github": (
            "rovo_reconcile.github.command:github",
            "Run the plan, apply, drift or adopt job of a GitHub Actions workflow.",
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

    def shell_complete(
        self, ctx: click.Context, incomplete: str
    ) -> list[click.shell_completion.CompletionItem]:
        """Subcommand names as click completes them, without importing the lazy ones (their
        help comes from `lazy`): a TAB press stays as fast as `--help`."""
        from click.shell_completion import CompletionItem

        results = []
        for name in self.list_commands(ctx):
            if not name.startswith(incomplete):
                continue
            if name in self.lazy:
                results.append(CompletionItem(name, help=self.lazy[name][1]))
            elif (command := super().get_command(ctx, name)) is not None and not command.hidden:
                results.append(CompletionItem(name, help=command.get_short_help_str()))
        results.extend(click.Command.shell_complete(self, ctx, incomplete))
        return results

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
    # One colour decision for the run: click would otherwise strip the renderers' ANSI
    # styles whenever stdout is not a terminal, which FORCE_COLOR asks it not to.
    click.get_current_context().color = _use_color()


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
    from rovo_reconcile.policy.loader import check_policies
    from rovo_reconcile.render.report import render_report

    result = check_policies(paths, today(now))
    click.echo(render_report(result, fmt, strict=strict, color=_use_color()), nl=False)
    failed = result.errors > 0 or (strict and result.warnings > 0)
    return EXIT_ERROR if failed else EXIT_OK


@cli.command()
def schema() -> int:
    """Print the policy JSON Schema (2020-12)."""
    from rovo_reconcile.policy.schema import schema_text

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
    timeout: float,
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

    where = resolve_target(target, api_url, api_key_file, sandbox_db, timeout=timeout)
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


@cli.command(short_help="Write policy files that match the live orgs.")
@click.option("--org", "org_id", default=None, metavar="ID", help="Atlassian organization id.")
@click.option("--all", "every", is_flag=True, help="Every org the API key can see (needs --dir).")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    default=None,
    metavar="D",
    help="Write one new file per org here (named by org name, or id) instead of printing.",
)
@target_options
def export(
    org_id: str | None,
    every: bool,
    directory: str | None,
    target: str | None,
    api_url: str | None,
    api_key_file: Path | None,
    sandbox_db: Path | None,
    concurrency: int,
    timeout: float,
) -> int:
    """Print a policy file that matches the live org (it plans to no changes), or with
    --all --dir D write one per org the key can see. Existing files are never overwritten:
    if any would be, nothing is written (exit 1)."""
    import asyncio
    from pathlib import Path

    from rovo_reconcile.errors import UsageError
    from rovo_reconcile.export import ExportedFile, export_all, schema_reference, write_new_files
    from rovo_reconcile.live_state import read_live
    from rovo_reconcile.render.live import render_export
    from rovo_reconcile.targets import resolve_target

    if (org_id is None) == (not every):
        raise UsageError("give --org ID or --all, not both and not neither")
    if every and directory is None:
        raise UsageError("export --all writes one file per org; say where with --dir D")
    where = resolve_target(target, api_url, api_key_file, sandbox_db, timeout=timeout)
    folder = Path(directory) if directory is not None else None
    if folder is not None:
        reference, found = schema_reference(folder)
        if not found:
            click.echo(
                f"rovo-reconcile: note: no schemas/rovo-policy.schema.json above {folder}; the "
                f"modeline points at {reference} (add it: rovo-reconcile schema > "
                "schemas/rovo-policy.schema.json)",
                err=True,
            )
    else:
        reference = "../schemas/rovo-policy.schema.json"
    if every:
        assert folder is not None
        with _progress() as progress:
            files, requests = asyncio.run(
                export_all(where, folder, concurrency=concurrency, on_done=progress)
            )
    else:
        assert org_id is not None
        read = asyncio.run(read_live(where, [org_id], concurrency=concurrency))
        org = read.org(org_id)
        for note in org.notes:
            click.echo(f"rovo-reconcile: note: {note}", err=True)
        ambiguity = org.ambiguity()
        if ambiguity is not None:  # a policy names each allowlist once
            raise RovoError(f"cannot export org {org_id}: {ambiguity}")
        _refuse_over_limit(org_id, org)
        text = render_export(org, where.label, schema=reference)
        if folder is None:
            click.echo(text, nl=False)
            return EXIT_OK
        files, requests = (
            [ExportedFile(folder / f"{org_id}.yaml", org_id, None, text)],
            read.requests,
        )
    write_new_files(files)
    for file in files:
        shown = f"{file.name} ({file.org_id})" if file.name else file.org_id
        click.echo(f"wrote {file.path} (org {shown})")
    click.echo(
        f"rovo-reconcile: exported {len(files)} org(s) from {where.label} with {requests} requests",
        err=True,
    )
    return EXIT_OK


@cli.command(short_help="Rewrite policy files to match live, comments kept.")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--org", "org_id", default=None, metavar="ID", help="Only this org's policy file.")
@target_options
@click.option("--dry-run", is_flag=True, help="Print a unified diff instead of writing.")
@click.option(
    "--force",
    is_flag=True,
    help="Write even where accepting live shuts a mustAllow address out (validate then fails).",
)
@now_option
def adopt(
    paths: tuple[str, ...],
    org_id: str | None,
    target: str | None,
    api_url: str | None,
    api_key_file: Path | None,
    sandbox_db: Path | None,
    concurrency: int,
    timeout: float,
    dry_run: bool,
    force: bool,
    now: date | None,
) -> int:
    """Rewrite policy files so they plan to no changes against live (read-only on live).

    Only what differs is edited; comments, notes, key order, quoting and guards stay.
    Nothing is written unless every file's new text loads as valid and plans to no
    changes. Exit 3 when accepting live would shut a mustAllow address out.
    """
    import asyncio
    import difflib

    from rovo_reconcile.adopt import adopt_policies, write_adopted
    from rovo_reconcile.errors import GuardRefused, UsageError
    from rovo_reconcile.targets import resolve_target

    day = today(now)
    policies = load_valid(paths, day, None)
    if org_id is not None:
        policies = [p for p in policies if p.policy.org.id == org_id]
        if not policies:
            raise UsageError(f"no policy in {', '.join(paths)} governs org {org_id}")
    where = resolve_target(target, api_url, api_key_file, sandbox_db, timeout=timeout)
    with _progress() as progress:
        run = asyncio.run(
            adopt_policies(
                where, policies, day, force=force, concurrency=concurrency, on_done=progress
            )
        )
    for note in run.notes:
        click.echo(f"rovo-reconcile: note: {note}", err=True)
    for message in (*run.errors, *run.refusals):
        click.echo(f"rovo-reconcile: {message}", err=True)
    if run.errors:
        raise RovoError(f"{len(run.errors)} file(s) could not be adopted; nothing was written")
    if run.refusals:
        raise GuardRefused(f"{len(run.refusals)} file(s) refused; nothing was written")
    for adoption in run.changed:
        if dry_run:
            diff = difflib.unified_diff(
                adoption.before.splitlines(keepends=True),
                adoption.after.splitlines(keepends=True),
                f"a/{adoption.file}",
                f"b/{adoption.file}",
            )
            click.echo("".join(diff), nl=False)
        else:
            click.echo(f"{adoption.file}: {len(adoption.changes)} change(s) from {adoption.title}")
            for line in adoption.changes:
                click.echo(f"  {line}")
        for note in adoption.notes:
            click.echo(f"rovo-reconcile: warning: {adoption.file}: {note}", err=True)
    if not dry_run:
        write_adopted(run.changed)
    verb = "would rewrite" if dry_run else "rewrote"
    click.echo(
        f"rovo-reconcile: {verb} {len(run.changed)} of {len(run.files)} file(s) to match "
        f"{where.label} ({run.requests} requests)",
        err=True,
    )
    return EXIT_OK


@cli.command(short_help="Print a shell completion script (bash, zsh or fish).")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> int:
    """Print the completion script for SHELL. Load it in the shell's start-up file:

    \b
      bash:  eval "$(rovo-reconcile completion bash)"      (~/.bashrc)
      zsh:   eval "$(rovo-reconcile completion zsh)"       (~/.zshrc)
      fish:  rovo-reconcile completion fish | source      (~/.config/fish/config.fish)
    """
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    assert completer is not None  # click ships all three
    root = click.get_current_context().find_root().command
    script = completer(root, {}, PROG_NAME, COMPLETE_VAR).source()
    click.echo(script, nl=not script.endswith("\n"))
    return EXIT_OK


def _refuse_over_limit(org_id: str, org: LiveOrg) -> None:
    """An org past 500 entries per app would export as a policy `validate` rejects: say so."""
    from rovo_reconcile.app_limit import export_refusal
    from rovo_reconcile.plan import allowlist_value

    why = export_refusal(allowlist_value(a) for a in org.state.ip_allowlists or ())
    if why is not None:
        raise RovoError(f"cannot export org {org_id}: {why}")


def _use_color() -> bool:
    """Colour for stdout: see `color.use_color` (NO_COLOR, FORCE_COLOR, a terminal)."""
    from rovo_reconcile.color import use_color

    return use_color(sys.stdout.isatty(), os.environ)


def _read_and_plan(
    where: Target,
    policies: Sequence[LoadedPolicy],
    day: date,
    concurrency: int,
    mcp: McpMode,
    *,
    force: bool = False,
) -> PlanRun:
    """Read every org (read-only) and plan it, with progress on stderr: plan, apply, drift."""
    import asyncio

    from rovo_reconcile.reconcile import compute_plan

    with _progress() as progress:
        return asyncio.run(
            compute_plan(
                where,
                policies,
                day,
                concurrency=concurrency,
                force=force,
                on_done=progress,
                mcp=mcp,
            )
        )


def _progress() -> AbstractContextManager[OrgProgress]:
    """Progress of one multi-org phase on stderr; silent when only one org is involved."""
    from rovo_reconcile.progress import org_progress

    return org_progress(sys.stderr)


def _write_atomically(path: str, text: Iterable[str]) -> None:
    """Write `text` (its pieces) to a temporary file beside `path`, then rename: never a
    half-written plan."""
    import tempfile
    from pathlib import Path

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.writelines(text)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


@cli.command(short_help="Show what apply would change (read-only).")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@target_options
@click.option(
    "--out",
    default=None,
    metavar="PLAN.json",
    help="Also write the plan as JSON, for apply --plan.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="markdown is built for a pull-request comment.",
)
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes (0 when none)."
)
@click.option(
    "--force",
    is_flag=True,
    help="Judge the guards as apply --force would (the lockout guard still refuses).",
)
@mcp_option
@now_option
@shard_option
def plan(
    paths: tuple[str, ...],
    target: str | None,
    api_url: str | None,
    api_key_file: Path | None,
    sandbox_db: Path | None,
    concurrency: int,
    timeout: float,
    out: str | None,
    fmt: str,
    detailed_exitcode: bool,
    force: bool,
    mcp_mode: McpMode,
    now: date | None,
    shard: str | None,
) -> int:
    """Show what apply would change (read-only: no write can leave the process).

    Exit 3 when apply would refuse (a safety guard); 1 when an org could not be planned.
    MCP settings no API can read are listed as manual steps; --detailed-exitcode counts
    only changes the API makes.
    """

    from rovo_reconcile.plan_json import plan_chunks
    from rovo_reconcile.reconcile import plan_exit_code
    from rovo_reconcile.targets import resolve_target

    day = today(now)
    policies = load_valid(paths, day, shard)
    where = resolve_target(target, api_url, api_key_file, sandbox_db, timeout=timeout)
    run = _read_and_plan(where, policies, day, concurrency, mcp_mode, force=force)
    if fmt == "json":  # an org at a time: a thousand orgs' plan file is tens of megabytes
        for chunk in plan_chunks(run.plan):
            click.echo(chunk, nl=False)
    else:
        click.echo(_render_plan(run.plan, fmt), nl=False)
    if out is not None:
        _write_atomically(out, plan_chunks(run.plan))
    click.echo(
        f"rovo-reconcile: planned {len(run.plan.orgs)} org(s) on {where.label} with {run.requests} requests",
        err=True,
    )
    return plan_exit_code(run.plan, detailed=detailed_exitcode)


def _render_plan(the_plan: Plan, fmt: str) -> str:
    if fmt == "json":
        from rovo_reconcile.plan_json import dump_plan

        return dump_plan(the_plan)
    if fmt == "markdown":
        from rovo_reconcile.render.plan_markdown import render_plan_markdown

        return render_plan_markdown(the_plan)
    from rovo_reconcile.render.plan_text import render_plan_text

    return render_plan_text(the_plan, color=_use_color())


@cli.command(short_help="Make live match the policies, or apply a saved plan.")
@click.argument("paths", nargs=-1, metavar="[PATH...]")
@click.option(
    "--plan", "plan_file", default=None, metavar="PLAN.json", help="Apply exactly this saved plan."
)
@click.option(
    "--reviewed",
    "reviewed_file",
    default=None,
    metavar="PLAN.json",
    help="Re-plan PATHs and apply only if the changes equal this reviewed plan's (implies --yes).",
)
@click.option("--yes", is_flag=True, help="Apply without asking (needed when not on a terminal).")
@click.option(
    "--force",
    is_flag=True,
    help="Pass the delete-share and enabled-allowlist guards (never the lockout guard).",
)
@click.option(
    "--journal",
    default=".rovo-reconcile/journal.jsonl",
    show_default=True,
    metavar="FILE",
    help="JSON-lines record of every write.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="The apply report; json is stable, for machines (the plan then goes to stderr).",
)
@target_options
@mcp_option
@now_option
@shard_option
def apply(
    paths: tuple[str, ...],
    plan_file: str | None,
    reviewed_file: str | None,
    yes: bool,
    force: bool,
    journal: str,
    fmt: str,
    target: str | None,
    api_url: str | None,
    api_key_file: Path | None,
    sandbox_db: Path | None,
    concurrency: int,
    timeout: float,
    mcp_mode: McpMode,
    now: date | None,
    shard: str | None,
) -> int:
    """Make live match the policies (PATH... --yes), or apply a saved plan (--plan FILE).

    With --reviewed PLAN.json, PATHs are planned afresh and applied only when their
    changes are exactly the reviewed plan's; otherwise nothing is written (exit 3).
    """
    import asyncio
    from pathlib import Path

    from rovo_reconcile.apply import Journal, result_without_writes, run_apply
    from rovo_reconcile.errors import GuardRefused, UsageError
    from rovo_reconcile.run_context import github_context
    from rovo_reconcile.targets import resolve_target

    if bool(paths) == bool(plan_file) or (reviewed_file and plan_file):
        raise UsageError(
            "give policy PATHs (with --yes or --reviewed PLAN.json) or --plan FILE, "
            "not both and not neither"
        )
    where = resolve_target(target, api_url, api_key_file, sandbox_db, timeout=timeout)
    refuse_default_sandbox_in_ci(where)
    the_journal = Journal(Path(journal), where.label, github_context(os.environ))
    the_journal.check_writable()
    if plan_file is not None:
        the_plan = read_plan_file(plan_file, "--plan")
        if the_plan.target != where.label:
            raise GuardRefused(f"the plan was made for target {the_plan.target}, not {where.label}")
    else:
        reviewed = read_plan_file(reviewed_file, "--reviewed") if reviewed_file else None
        if reviewed is not None and reviewed.target != where.label:
            raise GuardRefused(
                f"the reviewed plan was made for target {reviewed.target}, not {where.label}"
            )
        day = today(now)
        policies = load_valid(paths, day, shard)
        run = _read_and_plan(where, policies, day, concurrency, mcp_mode, force=force)
        the_plan = run.plan
        click.echo(_render_plan(the_plan, "text"), nl=False, err=fmt == "json")
        if the_plan.empty:
            if fmt == "json" or the_plan.manual[0]:  # manual MCP steps: never "nothing to do"
                _echo_apply(result_without_writes(the_plan), fmt, journal)
            else:
                click.echo("Apply: nothing to do; 0 writes sent.")
            return EXIT_OK
        if not any(org.changes for org in the_plan.orgs):
            if fmt == "json":  # the text plan has shown the read errors already
                _echo_apply(result_without_writes(the_plan), fmt, journal)
            return EXIT_ERROR
        if reviewed is not None:
            check_reviewed(reviewed, the_plan, err=fmt == "json")
        elif not yes:
            if not sys.stdin.isatty():
                raise UsageError("apply needs --yes (or --plan FILE) when not run from a terminal")
            question = f"Apply these changes to {where.label}?"
            if not click.confirm(question, default=False, err=fmt == "json"):
                click.echo("rovo-reconcile: nothing applied", err=True)
                return EXIT_OK
    with _progress() as progress:
        result = asyncio.run(
            run_apply(
                where,
                the_plan,
                force=force,
                journal=the_journal,
                concurrency=concurrency,
                on_done=progress,
            )
        )
    _echo_apply(result, fmt, journal)
    return result.exit_code


def read_plan_file(path: str, option: str) -> Plan:
    """A saved JSON plan; an unreadable or malformed file is a usage error naming it."""
    from pathlib import Path

    from rovo_reconcile.errors import UsageError
    from rovo_reconcile.plan_json import load_plan
    from rovo_reconcile.policy.files import special_kind

    kind = special_kind(Path(path))
    if kind is not None:
        raise UsageError(f"{option} {path}: this is {kind}, not a plan file")
    try:
        text = Path(path).read_text("utf-8")
    except OSError as e:
        raise UsageError(f"{option} {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise UsageError(f"{option} {path}: not a plan file (not UTF-8 text)") from e
    return load_plan(text, path)


def check_reviewed(reviewed: Plan, fresh: Plan, *, err: bool = False) -> None:
    """Refuse (exit 3, nothing written) unless `fresh` makes exactly the reviewed changes;
    the explanation goes to stderr when stdout carries JSON (`err`)."""
    from rovo_reconcile.errors import GuardRefused
    from rovo_reconcile.explain import reviewed_difference

    difference = reviewed_difference(reviewed.changes_digest, reviewed, fresh)
    if difference is None:
        click.echo(
            f"rovo-reconcile: the changes are the reviewed ones ({fresh.changes_digest})", err=True
        )
        return
    click.echo("The changes differ from the reviewed plan:", err=err)
    for line in difference:
        click.echo(f"  {line}", err=err)
    raise GuardRefused(
        "the changes differ from the reviewed plan, so nothing was written; review a new "
        f"plan (reviewed {reviewed.changes_digest}, now {fresh.changes_digest})"
    )


def _echo_apply(result: ApplyResult, fmt: str, journal: str) -> None:
    """The apply report on stdout: text for people, or the stable JSON report."""
    if fmt == "json":
        from rovo_reconcile.render.apply_json import render_apply_json

        click.echo(render_apply_json(result), nl=False)
        return
    from rovo_reconcile.render.apply_report import render_apply

    click.echo(render_apply(result, journal=journal), nl=False)


@cli.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@target_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@ack_option
@mcp_option
@now_option
@shard_option
def drift(
    paths: tuple[str, ...],
    target: str | None,
    api_url: str | None,
    api_key_file: Path | None,
    sandbox_db: Path | None,
    concurrency: int,
    timeout: float,
    fmt: str,
    ack_file: str | None,
    mcp_mode: McpMode,
    now: date | None,
    shard: str | None,
) -> int:
    """Report where live differs from the policies (read-only). Exit 2 on drift.

    MCP settings no API can read are reported as unverifiable, which is not drift (exit 0).
    """

    from rovo_reconcile.render.drift import drift_items, render_drift
    from rovo_reconcile.targets import resolve_target

    day = today(now)
    acks = load_ack_file(ack_file)
    policies = load_valid(paths, day, shard)
    where = resolve_target(target, api_url, api_key_file, sandbox_db, timeout=timeout)
    run = _read_and_plan(where, policies, day, concurrency, mcp_mode)
    report = render_drift(
        run.plan, acks, day, fmt, color=fmt == "text" and _use_color(), sharded=shard is not None
    )
    click.echo(report, nl=False)
    if any(org.error for org in run.plan.orgs):
        return EXIT_ERROR
    drifted = [item for item in drift_items(run.plan, acks, day) if item.acknowledged is None]
    return EXIT_CHANGES if drifted else EXIT_OK


@cli.command(short_help="Would an AI tool's call get through? (read-only)")
@click.argument("paths", nargs=-1, metavar="[PATH...]")
@click.option("--live", is_flag=True, help="Ask the live org (--org ID) instead of a policy file.")
@click.option("--org", "org_id", default=None, metavar="ID", help="The organization id.")
@click.option(
    "--app",
    type=click.Choice(["jira", "jsm", "confluence", "compass", "rovo"]),
    default=None,
    help="The app the call reaches [default: jira, confluence, compass and rovo].",
)
@click.option(
    "--tool",
    default=None,
    metavar="URL|NAME",
    help="The tool's OAuth redirect URI, or a catalogue name such as anthropic "
    "[default: every catalogue tool].",
)
@click.option(
    "--from",
    "source",
    default=None,
    metavar="ADDRESS",
    help="The address (or CIDR block) the call comes from [default: the tool's published "
    "egress ranges].",
)
@click.option(
    "--auth",
    type=click.Choice(["oauth", "token"]),
    default="oauth",
    show_default=True,
    help="How the tool authenticates.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@target_options
@now_option
def access(
    paths: tuple[str, ...],
    live: bool,
    org_id: str | None,
    app: str | None,
    tool: str | None,
    source: str | None,
    auth: str,
    fmt: str,
    target: str | None,
    api_url: str | None,
    api_key_file: Path | None,
    sandbox_db: Path | None,
    concurrency: int,
    timeout: float,
    now: date | None,
) -> int:
    """Would a call pass both of Atlassian's controls? The allowed domains (the supported
    list, or a matching pattern) and the IP allowlists of the app called: each control's
    verdict, why, and the policy line (or live object) that decides it.

    Without --tool, every catalogue AI tool is asked about (a matrix over the apps). A
    cloud AI tool calls from its vendor's published egress ranges, which are used unless
    --from is given. Exit 0 when every answer is "allowed", 2 when any is "blocked" or
    "unknown" (JSON says which), 1 on an invalid policy or a failed read, 64 on bad usage.
    """
    from typing import cast

    from rovo_reconcile.access.answer import Auth, answer, combine
    from rovo_reconcile.access.questions import build_questions
    from rovo_reconcile.access.render import render_access
    from rovo_reconcile.errors import UsageError

    questions = build_questions(app, tool, source, cast(Auth, auth))
    day = today(now)
    if live:
        if paths or org_id is None:
            raise UsageError("access --live takes --org ID and no policy PATH")
        view = _live_access_view(
            org_id, target, api_url, api_key_file, sandbox_db, concurrency, timeout
        )
    else:
        if not paths:
            raise UsageError("access needs a policy PATH, or --live --org ID")
        view = _file_access_view(paths, org_id, day)
    answers = [answer(view, question) for question in questions]
    click.echo(render_access(view, answers, fmt), nl=False)
    return EXIT_OK if combine([a.verdict for a in answers]) == "allowed" else EXIT_CHANGES


def _file_access_view(paths: tuple[str, ...], org_id: str | None, day: date) -> OrgView:
    """The one policy of PATHs (the one for --org when they hold several), located."""
    from pathlib import Path

    from rovo_reconcile.access.view import file_view
    from rovo_reconcile.errors import UsageError
    from rovo_reconcile.policy.yaml_source import load_document

    policies = load_valid(paths, day, None)
    if org_id is not None:
        policies = [p for p in policies if p.policy.org.id == org_id]
        if not policies:
            raise UsageError(f"no policy in {', '.join(paths)} governs org {org_id}")
    if len(policies) != 1:
        orgs = ", ".join(p.policy.org.id for p in policies)
        raise UsageError(
            f"{', '.join(paths)} hold several organizations ({orgs}); pick one with --org"
        )
    loaded = policies[0]
    doc, _ = load_document(Path(loaded.file), loaded.file)
    return file_view(doc, loaded.policy, day)


def _live_access_view(
    org_id: str,
    target: str | None,
    api_url: str | None,
    api_key_file: Path | None,
    sandbox_db: Path | None,
    concurrency: int,
    timeout: float,
) -> OrgView:
    import asyncio

    from rovo_reconcile.access.view import live_view
    from rovo_reconcile.live_state import read_live
    from rovo_reconcile.targets import resolve_target

    where = resolve_target(target, api_url, api_key_file, sandbox_db, timeout=timeout)
    org = asyncio.run(read_live(where, [org_id], concurrency=concurrency)).org(org_id)
    for note in org.notes:
        click.echo(f"rovo-reconcile: note: {note}", err=True)
    return live_view(
        org_id,
        org.state,
        where.label,
        mcp_readable=org.mcp_available,
        kept_apps=org.kept_apps,
    )


def run(argv: Sequence[str]) -> int:
    """Run the CLI and return its exit code; never lets a traceback reach the user."""
    try:
        result = cli.main(
            args=list(argv),
            prog_name=PROG_NAME,
            complete_var=COMPLETE_VAR,
            standalone_mode=False,
        )
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort as e:
        if isinstance(e.__cause__, KeyboardInterrupt):  # click's word for Ctrl-C
            click.echo("rovo-reconcile: interrupted", err=True)
            return EXIT_INTERRUPTED
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
        return EXIT_INTERRUPTED
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
    # pydantic looks for its plugins (observability hooks this tool never loads) by reading
    # the entry points of every installed distribution when it builds its first model:
    # ~30 ms of each command's start in a full environment (issue 9). A user's own setting
    # still wins.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    code = run(sys.argv[1:])
    # The process ends here. Freezing what is left spares the interpreter's exit-time
    # garbage collections a walk over every object of ~500 imported modules: ~50 ms of a
    # 0.4 s plan (issue 9). Everything the command opened is closed by now, and
    # weakref.finalize callbacks (the sandbox's SQLite anchor) still run at exit.
    gc.freeze()
    sys.exit(code)
