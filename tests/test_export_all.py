"""`export --all --dir D` and the schema modeline, end to end through the CLI subprocess."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from rovo_reconcile.api.orgs import VisibleOrg
from rovo_reconcile.export import file_names, schema_reference, slug

from .conftest import EXAMPLES, ROOT, CliRunner
from .emulator_fixture import start_emulator

KEY = "export-all-key"
MODELINE = re.compile(r"# yaml-language-server: \$schema=(\S+)\n")


def _repo(tmp_path: Path) -> Path:
    """A policy repository like examples/policy-repo: a schema copy at schemas/."""
    repo = tmp_path / "repo"
    (repo / "schemas").mkdir(parents=True)
    shutil.copy(ROOT / "schemas" / "rovo-policy.schema.json", repo / "schemas")
    return repo


def test_export_all_writes_one_file_per_org_that_plans_clean_and_never_overwrites(
    cli: CliRunner, tmp_path: Path
) -> None:
    """Four orgs over paginated listings (the emulator's pages hold two): four files named
    by org, each opening with a modeline that resolves to the repository's schema copy."""
    repo = _repo(tmp_path)
    env = {"ATLASSIAN_ADMIN_API_KEY": KEY}
    with start_emulator(tmp_path, "--settle-ms", "0", "--api-key", f"{KEY}:write") as emu:
        api = ("--api-url", emu.url)
        assert cli("apply", str(EXAMPLES), "--yes", *api, env=env).code == 0
        exported = cli("export", "--all", "--dir", "repo/policies", *api, env=env)
        assert exported.code == 0, exported.stderr
        files = sorted((repo / "policies").glob("*.yaml"))
        replan = cli("plan", str(repo / "policies"), "--detailed-exitcode", *api, env=env)
        contents = {f: f.read_bytes() for f in files}
        again = cli("export", "--all", "--dir", "repo/policies", *api, env=env)
    assert [f.name for f in files] == [
        "org-3f9c2a71.yaml",
        "org-7c05d9e3.yaml",
        "org-a4e7d1c2.yaml",
        "org-e2b8f4a6.yaml",
    ]
    assert exported.stdout.count("wrote ") == 4
    for file in files:
        text = file.read_text("utf-8")
        match = MODELINE.match(text)
        assert match, f"{file.name} does not open with the modeline"
        assert match.group(1) == "../schemas/rovo-policy.schema.json"
        assert (
            file.parent / match.group(1)
        ).resolve() == repo / "schemas" / "rovo-policy.schema.json"
        assert f"  name: Org {file.stem[4:]}\n" in text
    assert replan.code == 0, replan.stdout + replan.stderr
    assert again.code == 1
    assert "refusing to overwrite" in again.stderr
    assert all(str(f.relative_to(tmp_path)) in again.stderr for f in files)
    assert {f: f.read_bytes() for f in files} == contents


def test_one_existing_file_means_no_file_is_written(cli: CliRunner, tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    assert cli("apply", str(EXAMPLES / "small-team.yaml"), "--yes").code == 0
    assert cli("apply", str(EXAMPLES / "enterprise.yaml"), "--yes").code == 0
    (repo / "policies").mkdir()
    names = file_names([VisibleOrg(_org_of(EXAMPLES / "small-team.yaml"), ""), VisibleOrg("x", "")])
    taken = repo / "policies" / f"org-{next(iter(names))[:8]}.yaml"
    taken.write_text("# mine\n")
    result = cli("export", "--all", "--dir", str(repo / "policies"))
    assert result.code == 1
    assert str(taken) in result.stderr
    assert sorted(p.name for p in (repo / "policies").iterdir()) == [taken.name]
    assert taken.read_text() == "# mine\n"


def _org_of(policy: Path) -> str:
    match = re.search(r"^  id: (\S+)", policy.read_text("utf-8"), re.MULTILINE)
    assert match
    return match.group(1)


def test_export_of_one_org_prints_the_modeline_or_writes_it_into_dir(
    cli: CliRunner, tmp_path: Path
) -> None:
    org = _org_of(EXAMPLES / "small-team.yaml")
    printed = cli("export", "--org", org)
    assert printed.code == 0, printed.stderr
    assert printed.stdout.startswith(
        "# yaml-language-server: $schema=../schemas/rovo-policy.schema.json\n"
    )
    written = cli("export", "--org", org, "--dir", "out")
    assert written.code == 0, written.stderr
    assert "no schemas/rovo-policy.schema.json above out" in written.stderr
    assert (tmp_path / "out" / f"{org}.yaml").read_text("utf-8") == printed.stdout


def test_export_usage(cli: CliRunner) -> None:
    assert cli("export").code == 64
    assert cli("export", "--all").code == 64
    assert cli("export", "--all", "--org", "x", "--dir", "d").code == 64


def test_export_all_with_a_key_that_lists_no_org_says_so(cli: CliRunner, tmp_path: Path) -> None:
    """Atlassian's org-scoped keys have answered the listing with an empty list."""
    with start_emulator(tmp_path, "--strict-orgs") as emu:
        result = cli(
            "export",
            "--all",
            "--dir",
            "d",
            "--api-url",
            emu.url,
            env={"ATLASSIAN_ADMIN_API_KEY": "k"},
        )
    assert result.code == 1
    assert "lists no organizations" in result.stderr
    assert "--org ID" in result.stderr
    assert not (tmp_path / "d").exists()


def test_slugs_and_file_names() -> None:
    assert slug("Contoso Savings Bank") == "contoso-savings-bank"
    assert slug("Société Générale / Paris") == "societe-generale-paris"
    assert slug("株式会社") == ""
    orgs = [
        VisibleOrg("11111111-aaaa", "Acme"),
        VisibleOrg("22222222-bbbb", "ACME"),
        VisibleOrg("33333333-cccc", "株式会社"),
        VisibleOrg("44444444-dddd", "Beta Ltd."),
    ]
    assert file_names(orgs) == {
        "11111111-aaaa": "acme-11111111.yaml",
        "22222222-bbbb": "acme-22222222.yaml",
        "33333333-cccc": "33333333-cccc.yaml",
        "44444444-dddd": "beta-ltd.yaml",
    }


def test_schema_reference_finds_the_nearest_copy(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    assert schema_reference(repo / "policies" / "emea") == (
        "../../schemas/rovo-policy.schema.json",
        True,
    )
    assert schema_reference(tmp_path / "elsewhere") == ("../schemas/rovo-policy.schema.json", False)
