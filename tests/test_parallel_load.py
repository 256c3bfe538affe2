"""Policies loaded on every core (policy/parallel.py): the same report and policies as one
process, in any split; `validate` gets problems back, plan, apply and drift packed policies.

Workers check runs of files and send back problems and org ids; the one-file-per-org check
and the sorting happen in the parent. What could differ is whatever one process learns from
an earlier file: a shared baseline met by files in different workers, an org governed by files
in different runs, a baseline named on the command line and reached through `extends`.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
from datetime import date
from pathlib import Path

import pytest

from rovo_reconcile.policy import parallel
from rovo_reconcile.policy.loader import check_policies, load_policies

from .conftest import EXAMPLES, ROOT, CliRunner

pytestmark = pytest.mark.filterwarnings(
    # Python 3.12+ warns when a process with threads forks; a pytest worker may have one
    # (a fake server's). The CLI forks with none (policy/parallel.py checks).
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)

TODAY = date(2026, 11, 26)
ORG = "6b1f3a0e-5c2d-4f7a-9e88-2d4c1b0a9f1{}"

BASELINE = """\
apiVersion: rovo-reconcile/v1
kind: Baseline
locked: [mcp.authentication.apiToken, ipAllowlists.Corporate egress]
mcp:
  authentication: {apiToken: false}
  domains: [https://*.com/**]
ipAllowlists:
  - {name: Corporate egress, enabled: true, apps: [jira], addresses: [91.208.44.0/24]}
"""
"""A baseline with an error of its own (a pattern that admits every .com host)."""

GOOD_BASELINE = BASELINE.replace("https://*.com/**", "https://tools.corp.example/**")


def _org(n: int, *, extends: str | None = None, body: str = "") -> str:
    head = "apiVersion: rovo-reconcile/v1\nkind: OrgPolicy\n"
    if extends:
        head += f"extends: {extends}\n"
    return head + f"org:\n  id: {ORG.format(n)}\n" + body


def _repo(root: Path) -> Path:
    """Orgs in many files: some extend a broken baseline, some a good one, one weakens a lock,
    two govern the same org far apart, one is not YAML, one is a valid stand-alone policy."""
    (root / "baselines").mkdir(parents=True)
    (root / "baselines" / "broken.yaml").write_text(BASELINE)
    (root / "baselines" / "corp.yaml").write_text(GOOD_BASELINE)
    orgs = root / "orgs"
    orgs.mkdir()
    for n in range(10):
        extends = "../baselines/broken.yaml" if n % 3 == 0 else "../baselines/corp.yaml"
        (orgs / f"org-{n:02}.yaml").write_text(_org(n, extends=extends))
    (orgs / "org-04.yaml").write_text(
        _org(4, extends="../baselines/corp.yaml", body="mcp:\n  authentication: {apiToken: true}\n")
    )
    (orgs / "zz-duplicate.yaml").write_text(_org(1))
    (orgs / "not-yaml.yaml").write_text("org: [unclosed\n")
    shutil.copy(EXAMPLES / "enterprise.yaml", orgs / "enterprise.yaml")
    return root


def _report(result: object) -> tuple[list[str], list[tuple[object, ...]]]:
    files = list(result.files)  # type: ignore[attr-defined]
    problems = [
        (p.file, p.line, p.column, p.severity, p.code, p.message, p.hint)
        for p in result.problems  # type: ignore[attr-defined]
    ]
    return files, problems


@pytest.mark.parametrize("jobs", [1, 2, 3, 5])
@pytest.mark.parametrize("how", ["relative", "absolute", "baseline-listed-first"])
def test_every_split_reports_what_one_process_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int, how: str
) -> None:
    root = _repo(tmp_path)
    monkeypatch.chdir(root)
    paths = {
        "relative": ["orgs", "baselines"],
        "absolute": [str(root / "orgs"), str(root / "baselines")],
        "baseline-listed-first": ["baselines/broken.yaml", str(root / "orgs")],
    }[how]
    serial = load_policies(paths, TODAY)
    codes = {p.code for p in serial.problems}
    assert {"org.duplicate", "yaml.syntax"} <= codes, codes  # the repo has what it should
    assert len(serial.policies) > 1
    assert _report(check_policies(paths, TODAY, jobs=jobs)) == _report(serial)


@pytest.mark.parametrize("jobs", [2, 4])
def test_the_corpus_and_examples_report_the_same_in_workers(jobs: int) -> None:
    paths = [str(ROOT / "tests" / "corpus"), str(EXAMPLES), str(ROOT / "examples" / "policy-repo")]
    assert _report(check_policies(paths, TODAY, jobs=jobs)) == _report(load_policies(paths, TODAY))


def test_work_is_split_in_order_and_only_when_it_pays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = []
    for n in range(10):
        path = tmp_path / f"{n}.yaml"
        path.write_text("x" * 1000)
        files.append(path)
    monkeypatch.delenv("ROVO_RECONCILE_JOBS", raising=False)
    monkeypatch.setattr(parallel, "_cores", lambda: 2)
    monkeypatch.setattr(parallel, "_can_fork", lambda: True)  # as in the CLI: one thread
    assert parallel.split_work(files) == [files]  # 10 KB: one process
    monkeypatch.setattr(parallel, "PARALLEL_BYTES", 5_000)
    runs = parallel.split_work(files)
    assert len(runs) == 8
    assert [f for run in runs for f in run] == files
    monkeypatch.setattr(parallel, "_cores", lambda: 1)
    assert parallel.split_work(files) == [files]  # one core: never fork
    monkeypatch.setattr(parallel, "_cores", lambda: 2)
    monkeypatch.setenv("ROVO_RECONCILE_JOBS", "3")
    assert len(parallel.split_work(files)) == 10  # forced: 3 workers, a run of 1 or 2 each
    monkeypatch.setattr(parallel, "_can_fork", lambda: False)
    assert parallel.split_work(files) == [files]  # another thread: never fork
    monkeypatch.delenv("ROVO_RECONCILE_JOBS")
    assert parallel.split_work(files) == [files]


def test_validate_in_workers_prints_what_one_process_prints(cli: CliRunner, tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo")
    outputs = {}
    for jobs in ("1", "3"):
        for fmt in ("text", "json", "github"):
            result = cli(
                "validate", "--format", fmt, "orgs", "baselines",
                cwd=root, env={"ROVO_RECONCILE_JOBS": jobs},
            )  # fmt: skip
            assert result.code == 1
            outputs[jobs, fmt] = result.stdout
    for fmt in ("text", "json", "github"):
        assert outputs["3", fmt] == outputs["1", fmt]
    assert json.loads(outputs["3", "json"])["summary"]["files"] == 15


def test_a_bad_number_of_workers_is_a_usage_error(cli: CliRunner) -> None:
    result = cli("validate", str(EXAMPLES), env={"ROVO_RECONCILE_JOBS": "many"})
    assert result.code == 64
    assert "ROVO_RECONCILE_JOBS='many' is not a number of workers" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("jobs", ["1", "2", "3"])
def test_packed_policies_load_in_workers_as_in_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: str
) -> None:
    """plan, apply and drift load packed policies on every core: the same problems, the same
    policies in the same order, each with the lines and files its values came from."""
    root = _repo(tmp_path)
    monkeypatch.chdir(root)
    monkeypatch.setenv("ROVO_RECONCILE_JOBS", "1")
    serial = load_policies(["orgs", "baselines"], TODAY, packed=True)
    monkeypatch.setenv("ROVO_RECONCILE_JOBS", jobs)
    split = load_policies(["orgs", "baselines"], TODAY, packed=True)
    assert _report(split) == _report(serial)
    assert [p.file for p in split.policies] == [p.file for p in serial.policies]
    for ours, theirs in zip(split.policies, serial.policies, strict=True):
        assert (ours.org_id, ours.org_mark) == (theirs.org_id, theirs.org_mark)
        assert ours.policy == theirs.policy
        assert ours.source_places() == theirs.source_places()
        assert ours.domain_patterns() == theirs.domain_patterns()


def test_plan_with_workers_prints_what_one_process_prints(cli: CliRunner, tmp_path: Path) -> None:
    """Five orgs planned against the sandbox, loaded by 1 and by 3 workers."""
    policies = tmp_path / "policies"
    policies.mkdir()
    for n in range(5):
        text = (EXAMPLES / "small-team.yaml").read_text()
        first_id = text.split("id: ", 1)[1].split()[0]
        (policies / f"org-{n}.yaml").write_text(text.replace(first_id, ORG.format(n)))
    outputs = []
    for jobs in ("1", "3"):
        result = cli(
            "plan", "--format", "json", "policies",
            cwd=tmp_path, env={"ROVO_RECONCILE_JOBS": jobs},
        )  # fmt: skip
        assert result.code == 0, result.stderr
        outputs.append(json.loads(result.stdout))
    assert outputs[0] == outputs[1]
    assert len(outputs[0]["orgs"]) == 5


@pytest.mark.parametrize("jobs", [2, 3])
@pytest.mark.parametrize("how", ["symlinks-in-directories", "relative-and-absolute"])
def test_one_file_under_two_names_is_reported_as_one_process_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int, how: str
) -> None:
    """A file reached by two names (a symlink in a policy directory, or one path given
    relative and absolute) is one file: checked once, under its first name, in any split."""
    root = _repo(tmp_path)
    monkeypatch.chdir(root)
    (root / "baselines" / "zz-link.yaml").symlink_to("broken.yaml")
    (root / "orgs" / "zz-link.yaml").symlink_to("org-03.yaml")
    paths = {
        "symlinks-in-directories": ["orgs", "baselines"],
        "relative-and-absolute": [
            "orgs/org-01.yaml",
            "orgs/not-yaml.yaml",
            "orgs/org-02.yaml",
            str(root / "orgs" / "org-01.yaml"),
            str(root / "orgs" / "not-yaml.yaml"),
        ],
    }[how]
    serial = load_policies(paths, TODAY)
    problems = _report(serial)[1]
    assert not [p for p in problems if "zz-link" in str(p[0]) or str(root) in str(p[0])]
    assert not [p for p in problems if p[4] == "org.duplicate" and p[0] in p[5]]  # not itself
    assert _report(check_policies(paths, TODAY, jobs=jobs)) == _report(serial)
    packed = load_policies(paths, TODAY, packed=True)
    monkeypatch.setenv("ROVO_RECONCILE_JOBS", str(jobs))
    split = load_policies(paths, TODAY, packed=True)
    assert _report(split) == _report(packed)
    assert [p.file for p in split.policies] == [p.file for p in packed.policies]


def _meet(folder: Path, run: list[Path]) -> int:
    """A run's work that waits (up to 5 s) until two processes are at it, then says which."""
    (folder / str(os.getpid())).touch()
    deadline = time.monotonic() + 5
    while len(list(folder.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.getpid()


@pytest.mark.parametrize("count", [2, 3, 7])
def test_fewer_files_than_runs_still_get_every_worker(tmp_path: Path, count: int) -> None:
    """Two workers asked for, fewer files than four runs each: each file its own run, and
    two processes check them (not one forked worker doing all of it, slower than none)."""
    files = [tmp_path / f"{n}.yaml" for n in range(count)]
    for path in files:
        path.write_text("x")
    (tmp_path / "met").mkdir()
    runs = parallel.split_work(files, 2)
    assert [f for run in runs for f in run] == files
    work = functools.partial(_meet, tmp_path / "met")
    assert len(set(parallel.map_in_workers(work, runs))) == 2
