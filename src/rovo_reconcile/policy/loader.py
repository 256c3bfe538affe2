"""Policy files -> safety checks -> JSON Schema -> semantic rules -> model.

`load_policies` reports every problem of every file at once, sorted by file and
line; the models come back only for files without errors.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TypeVar

from rovo_reconcile.errors import UsageError
from rovo_reconcile.policy.files import special_kind
from rovo_reconcile.policy.model import OrgPolicy
from rovo_reconcile.policy.packed import PackedPolicy, WholePolicy, pack, whole
from rovo_reconcile.policy.problems import ERROR, WARNING, Mark, Problem
from rovo_reconcile.policy.rules import check_policy
from rovo_reconcile.policy.schema import schema_problems
from rovo_reconcile.policy.yaml_source import YamlRejected, load_document

_T = TypeVar("_T")

__all__ = ["LoadedPolicy", "PolicySet", "find_policy_files", "load_policies"]

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

    @property
    def policy(self) -> OrgPolicy:
        """The checked model, built anew on each access: hold it while you use it."""
        return self.packed.policy()

    def source_lines(self) -> dict[str, int]:
        """The line of `file` each change key is defined on."""
        return self.packed.source_lines()

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

    `packed` keeps each policy packed (`PackedPolicy`: a third of the memory, the same
    model on access) for callers that hold every policy while they plan (plan, apply,
    drift); `validate` keeps them as they are, which costs no time."""
    result = PolicySet()
    orgs: dict[str, LoadedPolicy] = {}
    files = find_policy_files(paths)
    result.files.extend(str(path) for path in files)
    # Checked one after the other: worker processes were measured slower on 2 cores, since
    # sending each checked policy back (models and source marks, about 130 KB pickled for a
    # 20 KB file) costs more than the second core saves (bench/README.md, "validate").
    keep = pack if packed else whole
    for problems, loaded in _paused_gc(_check_file(path, today, keep) for path in files):
        result.problems.extend(problems)
        if loaded is None:
            continue
        first = orgs.setdefault(loaded.org_id, loaded)
        if first is not loaded:
            result.problems.append(
                Problem.at(
                    loaded.file,
                    loaded.org_mark,
                    ERROR,
                    "org.duplicate",
                    f"organization {loaded.org_id} is also governed by "
                    f"{first.file}:{first.org_mark.line}",
                    "keep one policy file per organization",
                )
            )
            continue
        result.policies.append(loaded)
    result.problems.sort()
    return result


def _check_file(
    path: Path,
    today: date,
    keep: Callable[[OrgPolicy, dict[str, Mark]], PackedPolicy | WholePolicy],
) -> tuple[list[Problem], LoadedPolicy | None]:
    """One file's problems, and its policy when it has no error."""
    file = str(path)
    if (refused := _not_a_regular_file(path, file)) is not None:
        return [refused], None
    try:
        doc, problems = load_document(path, file)
    except YamlRejected as e:
        return [e.problem], None
    found = problems + schema_problems(doc)
    if found:
        return found, None
    checked = check_policy(doc, today)
    if checked.policy is None:
        return checked.problems, None
    policy = checked.policy
    kept = keep(policy, checked.sources)
    return checked.problems, LoadedPolicy(file, policy.org.id, doc.mark(("org", "id")), kept)
