"""Policy files -> safety checks -> JSON Schema -> semantic rules -> model.

`load_policies` reports every problem of every file at once, sorted by file and
line; the models come back only for files without errors.
"""

from __future__ import annotations

import functools
import gc
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import NamedTuple, TypeVar

from rovo_reconcile.errors import UsageError
from rovo_reconcile.policy.files import real_path, special_kind
from rovo_reconcile.policy.layering import Layer, baseline_problems, resolve
from rovo_reconcile.policy.model import Org, OrgPolicy
from rovo_reconcile.policy.packed import PackedPolicy, WholePolicy, pack, whole
from rovo_reconcile.policy.parallel import Runs, map_in_workers, split_work
from rovo_reconcile.policy.problems import ERROR, WARNING, Mark, Problem
from rovo_reconcile.policy.rules import check_policy
from rovo_reconcile.policy.salvage import salvage
from rovo_reconcile.policy.schema import invalid_parts, schema_problems
from rovo_reconcile.policy.yaml_source import SourceDocument, YamlRejected, load_document

_T = TypeVar("_T")

__all__ = ["LoadedPolicy", "PolicySet", "check_policies", "find_policy_files", "load_policies"]

_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, eq=False)
class LoadedPolicy:
    """A checked policy file. Its parsed document is not kept, only the policy and the line
    of each change key; for planning the policy is held packed (`PackedPolicy`) until its
    org is planned, so that a thousand orgs fit in memory at once (bench/README.md)."""

    file: str
    org_id: str
    org_mark: Mark
    """Where `org.id` is written (a second file for the same org names it)."""
    packed: PackedPolicy | WholePolicy
    origins: dict[str, str] = field(default_factory=dict)
    """Change key -> the baseline file that defines it (keys not here are in `file`)."""

    @property
    def policy(self) -> OrgPolicy:
        """The checked model, built anew on each access: hold it while you use it."""
        return self.packed.policy()

    def source_lines(self) -> dict[str, int]:
        """The line each change key is defined on, in `file` or the baseline `origins` names."""
        return self.packed.source_lines()

    def source_places(self) -> dict[str, str]:
        """`file:line` of the value behind each change key, in this file or a baseline."""
        origins, file = self.origins, self.file
        return {
            key: f"{origins.get(key, file)}:{line}" for key, line in self.source_lines().items()
        }

    def where(self, key: str) -> str | None:
        """`file:line` of the value behind a change key, in this file or a baseline."""
        return self.source_places().get(key)

    def domain_patterns(self) -> frozenset[str]:
        """The policy's domain patterns, which the loader has normalised."""
        return self.packed.domain_patterns()


@dataclass
class PolicySet:
    files: list[str] = field(default_factory=list)
    policies: list[LoadedPolicy] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(p.severity == ERROR for p in self.problems)

    @property
    def warnings(self) -> int:
        return sum(p.severity == WARNING for p in self.problems)


def find_policy_files(paths: Iterable[str]) -> list[Path]:
    """Files as given, directories searched recursively for *.yaml and *.yml, in a stable order."""
    found: dict[Path, None] = {}
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.endswith(_SUFFIXES):
                        found.setdefault(Path(root) / name)
        elif path.exists():
            found.setdefault(path)
        else:
            raise UsageError(f"{given}: no such file or directory")
    if not found:
        raise UsageError("no policy files (*.yaml, *.yml) found in " + ", ".join(paths))
    return list(found)


def _not_a_regular_file(path: Path, file: str) -> Problem | None:
    """A located refusal for anything but a regular file (after symlinks): opening a FIFO
    blocks until a writer comes, and a device may never end."""
    kind = special_kind(path)
    if kind is None:
        return None
    return Problem(
        file,
        1,
        1,
        ERROR,
        "file.not-regular",
        f"this is {kind}, not a regular file; a policy is read from a regular file only",
        "pass the policy file itself",
    )


def _paused_gc(items: Iterator[_T]) -> Iterator[_T]:
    """`items`, with the cyclic garbage collector's automatic runs held off while they are
    made and a young-generation pass after each instead.

    Checking a file allocates tens of thousands of objects that outlive it (models, marks);
    the automatic runs scanned them again and again, a third of the rules' time on 100 orgs.
    Each file's own cyclic garbage is still collected right after it; nothing is skipped.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for item in items:
            gc.collect(0)
            yield item
    finally:
        if was_enabled:
            gc.enable()


def load_policies(paths: Iterable[str], today: date, *, packed: bool = False) -> PolicySet:
    """Load and check every policy as of `today` (expiry dates are compared with it).

    Baselines (`kind: Baseline`) are checked but never returned as policies; an org file
    that `extends` one comes back merged over its chain (policy/layering.py). `packed`
    keeps each policy packed (`PackedPolicy`: a third of the memory, the same model on
    access) for callers that hold every policy while they plan (plan, apply, drift); many
    packed policies are loaded on every core (policy/parallel.py: ~20 KB pickled an org,
    where a model with its marks was ~130 KB). `check_policies` is the same check for
    `validate`, without the models."""
    run = functools.partial(_run, today, pack if packed else whole, _itself)
    result, policies = _check_all(paths, run, split_work if packed else _here)
    result.policies.extend(policies)
    return result


def check_policies(paths: Iterable[str], today: date, *, jobs: int | None = None) -> PolicySet:
    """Every problem of every file, as `load_policies` reports them, and no models.

    Many files are checked on every core (policy/parallel.py): each worker sends back its
    files' problems and org ids only, and the one-file-per-org check runs here, over all of
    them in file order. `jobs` forces a number of workers (1: this process alone)."""
    run = functools.partial(_run, today, whole, _org_file)
    result, _ = _check_all(paths, run, functools.partial(split_work, jobs=jobs))
    return result


_Org = TypeVar("_Org", "LoadedPolicy", "_OrgFile")


def _check_all(
    paths: Iterable[str],
    run: Callable[[dict[Path, str], list[Path]], tuple[list[Problem], list[_Org]]],
    split: Callable[[list[Path]], Runs],
) -> tuple[PolicySet, list[_Org]]:
    """Every file checked by `run`, in the runs `split` makes (in workers, or here); the
    problems of all, sorted, and what `run` sent back of each org's one policy file."""
    files = find_policy_files(paths)
    result = PolicySet([str(path) for path in files])
    listed, distinct = _names(files)
    found: list[_Org] = []
    for problems, sent in map_in_workers(functools.partial(run, listed), split(distinct)):
        result.problems.extend(problems)
        found.extend(sent)
    kept = _one_per_org(found, result.problems)
    # Every chain through a shared baseline finds that baseline's problems again.
    result.problems[:] = sorted(dict.fromkeys(result.problems))
    return result, kept


def _here(files: list[Path]) -> Runs:
    """One run, checked in this process: whole models cost more to send than to make."""
    return Runs([files], 1)


class _OrgFile(NamedTuple):
    """What the one-file-per-org check needs of a checked org file."""

    file: str
    org_id: str
    org_mark: Mark


def _itself(loaded: LoadedPolicy) -> LoadedPolicy:
    return loaded


def _org_file(loaded: LoadedPolicy) -> _OrgFile:
    return _OrgFile(loaded.file, loaded.org_id, loaded.org_mark)


_Keep = Callable[[OrgPolicy, dict[str, Mark]], PackedPolicy | WholePolicy]


def _run(
    today: date,
    keep: _Keep,
    send: Callable[[LoadedPolicy], _Org],
    listed: dict[Path, str],
    files: list[Path],
) -> tuple[list[Problem], list[_Org]]:
    """A run of files, checked (in a worker, or here): their problems, and what `send` keeps
    of each policy (one at a time: a model is let go once sent)."""
    problems: list[Problem] = []
    checked = _Checked(today, problems, listed)
    return problems, [send(loaded) for loaded in _load_each(files, checked, keep)]


def _names(files: list[Path]) -> tuple[dict[Path, str], list[Path]]:
    """Each file by its real path, under the first name it was named or found by, and the
    files without a second name of the same file (a symlink, a path given relative and
    absolute): each is checked once, under its first name. In one process a second name met
    the first's result; in workers it would be checked again, its problems and its org
    reported twice. A baseline reached through `extends` is reported under its listed name
    too, whichever file reached it first."""
    listed: dict[Path, str] = {}
    distinct: list[Path] = []
    for path in files:
        key = real_path(path)
        if key not in listed:
            listed[key] = str(path)
            distinct.append(path)
    return listed, distinct


def _one_per_org(loaded: Iterable[_Org], problems: list[Problem]) -> list[_Org]:
    """The policies, in order, but for a second file of an org already governed: an error."""
    orgs: dict[str, _Org] = {}
    kept: list[_Org] = []
    for policy in loaded:
        first = orgs.setdefault(policy.org_id, policy)
        if first is policy:
            kept.append(policy)
            continue
        problems.append(
            Problem.at(
                policy.file,
                policy.org_mark,
                ERROR,
                "org.duplicate",
                f"organization {policy.org_id} is also governed by "
                f"{first.file}:{first.org_mark.line}",
                "keep one policy file per organization",
            )
        )
    return kept


def _load_each(files: list[Path], checked: _Checked, keep: _Keep) -> Iterator[LoadedPolicy]:
    """Each org file without errors, checked and merged over its baselines, in order."""
    for found in _paused_gc(checked.check(path) for path in files):
        if found is None:
            continue
        policy, sources, origins = found.policy, found.sources, {}
        if found.extends:  # a baseline's chain too, if no org extends it yet
            layered = resolve(checked.layer(found), checked.layer_at, checked.today)
            checked.problems.extend(layered.problems)
            if any(p.severity == ERROR for p in layered.problems):
                continue
            policy, sources, origins = layered.policy, layered.sources, layered.origins
        if found.kind == "Baseline":
            continue
        yield LoadedPolicy(
            found.file, policy.org.id, found.org_mark, keep(policy, sources), origins
        )


@dataclass(frozen=True)
class _File:
    """A file that passed its own checks, with its parsed document: an org file's lives until
    the loader has merged and packed it, a baseline's until loading ends."""

    file: str
    kind: object
    extends: bool
    policy: OrgPolicy
    sources: dict[str, Mark]
    org_mark: Mark
    doc: SourceDocument | None


@dataclass(frozen=True)
class _Seen:
    """An org file already checked, remembered without its model: a thousand orgs' models
    held until loading ends cost 370 KB each (bench/README.md, memory)."""

    file: str
    kind: object


class _Checked:
    """Each file checked once, whether named on the command line or reached by `extends`;
    its problems reported once. Only baselines are kept whole (few, shared, and each
    needed again by every file that extends it)."""

    def __init__(self, today: date, problems: list[Problem], listed: dict[Path, str]) -> None:
        self.today = today
        self.problems = problems
        self.listed = listed
        self.done: dict[Path, _File | _Seen | None] = {}

    def check(self, path: Path, display: str | None = None) -> _File | None:
        """The file as checked, None when it has errors."""
        key = real_path(path)
        if key in self.done:
            cached = self.done[key]
            if not isinstance(cached, _Seen):
                return cached
            # An org file met before (through another file's `extends`): read it again; its
            # problems were reported the first time.
            return _check_file(path, self.today, cached.file)[1]
        problems, found = _check_file(path, self.today, display)
        self.problems.extend(problems)
        if found is None or found.kind == "Baseline":
            self.done[key] = found
        else:
            self.done[key] = _Seen(found.file, found.kind)
        return found

    def layer(self, found: _File) -> Layer:
        doc = found.doc if found.doc is not None else SourceDocument(found.file, {})
        return Layer(found.file, real_path(Path(found.file)), found.policy, doc, found.sources)

    def layer_at(self, path: Path) -> tuple[Layer | None, bool]:
        """For `resolve`: the checked baseline at `path`, and whether it could be read."""
        if path not in self.done:
            if not path.is_file():
                return None, False
            self.check(path, self.listed.get(path) or os.path.relpath(path))
        found = self.done[path]
        if isinstance(found, _Seen):  # not a baseline: `resolve` says so
            kind_only = SourceDocument(found.file, {"kind": found.kind})
            return Layer(found.file, path, OrgPolicy(org=Org(id="")), kind_only, {}), True
        return (None if found is None else self.layer(found)), True


def _check_file(
    path: Path, today: date, display: str | None = None
) -> tuple[list[Problem], _File | None]:
    """One file's problems, and the file as checked when it has no error."""
    file = display or str(path)
    if (refused := _not_a_regular_file(path, file)) is not None:
        return [refused], None
    try:
        doc, problems = load_document(path, file)
    except YamlRejected as e:
        return [e.problem], None
    problems += baseline_problems(doc)  # a Baseline's locked keys, beside any schema error
    if schema := schema_problems(doc):
        return problems + schema + _salvaged_problems(doc, today), None
    checked = check_policy(doc, today)
    if problems or checked.policy is None:  # problems: keys YAML refused (duplicates), locks
        return problems + checked.problems, None
    data = doc.data
    found = _File(
        file,
        data.get("kind"),
        "extends" in data,
        checked.policy,
        checked.sources,
        doc.mark(("org", "id")),
        doc,
    )
    return checked.problems, found


def _salvaged_problems(doc: SourceDocument, today: date) -> list[Problem]:
    """The semantic problems of the parts of `doc` the schema did not refuse, so one run
    reports everything (policy/salvage.py)."""
    salvaged = salvage(doc, invalid_parts(doc)) if doc.data is not None else None
    if salvaged is None:
        return []
    return check_policy(salvaged, today, salvaged=True).problems
