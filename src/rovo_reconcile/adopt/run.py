"""`adopt`: accept live into the policy files, checked before anything is written.

For each file: plan it against live (read-only, as `plan` reads), refuse where live
shuts out a `mustAllow` address the policy admits (unless forced), rewrite the text
(`rewrite`), then load the new text through the normal loader and plan it against
the same live state: it must plan to no changes, and its `guards` must be what they
were. Only when every file of the run passed is anything written (`write_adopted`),
each file atomically.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from rovo_reconcile.adopt.rewrite import rewrite_policy
from rovo_reconcile.api.live import LiveOrg
from rovo_reconcile.errors import RovoError
from rovo_reconcile.guards import locked_out
from rovo_reconcile.plan import OrgPlan, allowlist_value
from rovo_reconcile.policy.loader import LoadedPolicy
from rovo_reconcile.policy.model import APPS
from rovo_reconcile.policy.packed import whole
from rovo_reconcile.policy.problems import ERROR, Problem
from rovo_reconcile.policy.rules import check_policy
from rovo_reconcile.policy.schema import schema_problems
from rovo_reconcile.policy.yaml_source import (
    MAX_BYTES,
    SourceDocument,
    YamlRejected,
    parse_text,
)
from rovo_reconcile.progress import OnOrgDone
from rovo_reconcile.reconcile import compute_plan, plan_from_live
from rovo_reconcile.targets import Target

__all__ = ["AdoptRun", "FileAdoption", "adopt_policies", "write_adopted"]

_BOM = "\ufeff"
_LOCKOUT = "guard.lockout"


@dataclass(frozen=True)
class FileAdoption:
    file: str
    title: str
    """The org as plan names it: `Name (id)`."""
    before: str
    after: str
    changes: tuple[str, ...]
    """What adopt changed in the file, in words; empty when it already matches live."""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class AdoptRun:
    files: tuple[FileAdoption, ...] = ()
    errors: tuple[str, ...] = ()
    refusals: tuple[str, ...] = ()
    requests: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> tuple[FileAdoption, ...]:
        return tuple(f for f in self.files if f.after != f.before)


_EXTENDS = re.compile(r"^extends\s*:", re.MULTILINE)
"""A top-level `extends:` key: the file is one layer of a merged policy."""


async def adopt_policies(
    target: Target,
    policies: Sequence[LoadedPolicy],
    today: date,
    *,
    force: bool = False,
    concurrency: int = 8,
    on_done: OnOrgDone | None = None,
) -> AdoptRun:
    """Read every org (read-only) and work out each file's adopted text; writes nothing."""
    lives: dict[str, LiveOrg | RovoError] = {}  # adopt edits a few files: keep each org's live
    run = await compute_plan(
        target,
        policies,
        today,
        concurrency=concurrency,
        on_done=on_done,
        on_planned=lambda loaded, live: lives.__setitem__(loaded.org_id, live),
    )
    plans = {org.org_id: org for org in run.plan.orgs}
    files: list[FileAdoption] = []
    errors: list[str] = []
    refusals: list[str] = []
    notes: list[str] = []
    for loaded in sorted(policies, key=lambda p: p.file):
        org_plan = plans[loaded.policy.org.id]
        live = lives[loaded.org_id]
        if org_plan.error is not None or not isinstance(live, LiveOrg):
            errors.append(f"{loaded.file}: org {org_plan.title}: {org_plan.error or live}")
            continue
        if loaded.origins or _EXTENDS.search(Path(loaded.file).read_text("utf-8", "replace")):
            errors.append(
                f"{loaded.file}: extends a baseline; adopt does not rewrite layered files yet "
                "(a value may come from the baseline, which other orgs share): edit by hand, "
                "guided by `rovo-reconcile plan`"
            )
            continue
        notes.extend(_notes(loaded, org_plan, live))
        text = _read_text(loaded, today)
        if not org_plan.changes:
            files.append(FileAdoption(loaded.file, org_plan.title, text, text, ()))
            continue
        shut_out = _newly_locked_out(org_plan, live)
        if shut_out and not force:
            refusals.append(f"{loaded.file}: {shut_out} (--force writes it anyway)")
            continue
        try:
            bom = _BOM if text.startswith(_BOM) else ""
            after, said = rewrite_policy(text.removeprefix(bom), org_plan, live, today)
            after = bom + after
            problems = _check_adopted(after, text, loaded, live, target.label, today, force=force)
        except YamlRejected as e:  # the loader refused the rewritten text: a bug of ours
            problems = [f"{e.problem.message} (line {e.problem.line})"]
            after, said = text, []
        if problems:
            errors.append(
                f"{loaded.file}: live cannot be written into this file: " + "; ".join(problems)
            )
            continue
        forced = (f"forced: {shut_out}; validate refuses this file until that is fixed",)
        files.append(
            FileAdoption(
                loaded.file, org_plan.title, text, after, tuple(said), forced if shut_out else ()
            )
        )
    return AdoptRun(tuple(files), tuple(errors), tuple(refusals), run.requests, tuple(notes))


def _notes(loaded: LoadedPolicy, plan: OrgPlan, live: LiveOrg) -> list[str]:
    found = [f"org {plan.org_id}: {note}" for note in live.notes]
    if not live.mcp_available and loaded.policy.mcp is not None:
        found.append(
            f"{loaded.file}: the MCP settings of org {plan.org_id} cannot be read; the mcp "
            "section is left as it is"
        )
    return found


def _read_text(loaded: LoadedPolicy, today: date) -> str:
    """The file's text, which must still say what the loader read (else it changed since)."""
    path = Path(loaded.file)
    try:
        text = path.read_bytes().decode("utf-8")
        doc, _ = parse_text(text.removeprefix(_BOM), loaded.file)
    except (OSError, UnicodeDecodeError, YamlRejected) as e:
        raise RovoError(f"{loaded.file}: cannot read it again: {e}") from e
    if check_policy(doc, today).policy != loaded.policy:
        raise RovoError(f"{loaded.file} changed while adopt ran; nothing was written")
    return text


def _newly_locked_out(plan: OrgPlan, live: LiveOrg) -> str | None:
    """What accepting live would break: mustAllow addresses live's allowlists shut out of
    an app where the policy's admit them (the check apply's guard makes, `guards.locked_out`)."""
    must = plan.guards.must_allow
    if not must or plan.desired is None or plan.desired.get("ipAllowlists") is None:
        return None
    kept = live.kept_apps
    live_values = [allowlist_value(a) for a in live.state.ip_allowlists or ()]
    now = locked_out(live_values, must, kept) - locked_out(plan.desired["ipAllowlists"], must, kept)
    if not now:
        return None
    shown = []
    for address in must:
        apps = [app for app in (*APPS, *sorted({w for _, w in now})) if (address, app) in now]
        if apps:
            shown.append(f"{address} out of {', '.join(dict.fromkeys(apps))}")
    return (
        "accepting live would shut mustAllow "
        + "; ".join(shown)
        + ": no enabled live allowlist covering those apps admits it"
    )


def _check_adopted(
    text: str,
    loaded_text: str,
    loaded: LoadedPolicy,
    live: LiveOrg,
    target_label: str,
    today: date,
    *,
    force: bool,
) -> list[str]:
    """Why the adopted text is not right: it must load as valid, keep its guards, and plan to
    no changes against the same live state. With `force`, only the lockout of a mustAllow
    address is let through (the file is then checked as if it had no mustAllow)."""
    body = text.removeprefix(_BOM)
    if len(body.encode("utf-8")) > MAX_BYTES:
        return ["the result would be larger than 1 MiB"]
    doc, problems = parse_text(body, loaded.file)
    problems = problems + schema_problems(doc)
    if not problems:
        checked = check_policy(doc, today)
        problems = checked.problems
        policy, sources = checked.policy, checked.sources
        if policy is None and force and _only_lockouts(problems):
            guards = {k: v for k, v in doc.data.get("guards", {}).items() if k != "mustAllow"}
            bare = SourceDocument(doc.file, {**doc.data, "guards": guards}, doc.values, doc.keys)
            checked = check_policy(bare, today)
            policy, sources = checked.policy, checked.sources
    else:
        policy, sources = None, {}
    errors = [p for p in problems if p.severity == ERROR and not (force and p.code == _LOCKOUT)]
    if errors or policy is None:
        return [_shown(p) for p in errors] or ["the result does not load"]
    original, _ = parse_text(loaded_text.removeprefix(_BOM), loaded.file)
    if doc.data.get("guards") != original.data.get("guards"):
        return ["the guards would change (a bug: adopt never edits guards)"]
    adopted = LoadedPolicy(
        loaded.file, policy.org.id, doc.mark(("org", "id")), whole(policy, sources)
    )
    replan = plan_from_live(target_label, [adopted], {policy.org.id: live}, today).orgs[0]
    if replan.error is not None:
        return [replan.error]
    if replan.changes:
        keys = ", ".join(c.key for c in replan.changes)
        return [f"it would still plan {len(replan.changes)} change(s) ({keys}); this is a bug"]
    return []


def _only_lockouts(problems: Sequence[Problem]) -> bool:
    return all(p.code == _LOCKOUT for p in problems if p.severity == ERROR)


def _shown(problem: Problem) -> str:
    return f"line {problem.line}: {problem.message} [{problem.code}]"


# ------------------------------------------------------------------ writing


def write_adopted(files: Sequence[FileAdoption]) -> None:
    """Write every adopted file, each atomically (a temporary file beside it, then rename),
    keeping its permissions; a file changed since it was read stops the run first."""
    for adoption in files:
        if Path(adoption.file).read_bytes().decode("utf-8", "replace") != adoption.before:
            raise RovoError(f"{adoption.file} changed while adopt ran; nothing was written")
    for adoption in files:
        _replace(Path(adoption.file), adoption.after)


def _replace(path: Path, text: str) -> None:
    target = path.resolve()  # a symlinked policy: rewrite the file it points at
    mode = target.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
