"""The reviewed-plan lookup: merge commit -> PR -> plan comment -> digest and plan artifact."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from rovo_reconcile.errors import EXIT_GUARD
from rovo_reconcile.github.client import GitHubClient
from rovo_reconcile.github.comments import format_metadata, plan_marker
from rovo_reconcile.github.errors import ArtifactError
from rovo_reconcile.github.reviewed import (
    PLAN_FILE,
    NoReviewedPlan,
    artifact_name,
    download_plan,
    find_merged_pr,
    read_plan_zip,
    reviewed_plan,
)

from .fake_github import FakeGitHub, make_zip

TARGET = "atlassian (https://api.atlassian.com)"
HEAD = "a" * 40
MERGE = "m" * 40
DIGEST = "sha256:" + "1" * 64
PLAN = {"format": 1, "changes_digest": DIGEST, "orgs": []}


def seed(fake: FakeGitHub, *, head: str = HEAD, metadata: dict[str, object] | None = None) -> int:
    """A PR merged as MERGE whose bot comment planned `head`."""
    pr = fake.add_pull(head_sha=HEAD, merge_commit_sha=MERGE, merged=True)
    meta = {
        "digest": DIGEST,
        "head_sha": head,
        "run_id": 4242,
        "artifact": artifact_name(pr, head),
        "target": TARGET,
        "exit_code": 2,
    }
    if metadata is not None:
        meta = metadata
    fake.add_comment(pr, f"{plan_marker(TARGET)}\n{format_metadata(meta)}\n# Plan")
    return pr


def no_plan(client: GitHubClient, fake: FakeGitHub, sha: str = MERGE) -> str:
    with pytest.raises(NoReviewedPlan) as caught:
        reviewed_plan(client, fake.repo, sha, TARGET)
    assert caught.value.exit_code == EXIT_GUARD
    return caught.value.reason


def test_success_with_the_plan_artifact(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    pr = seed(fake_github)
    fake_github.add_artifact(artifact_name(pr, HEAD), {PLAN_FILE: json.dumps(PLAN)})
    reviewed = reviewed_plan(github_client, fake_github.repo, MERGE, TARGET)
    assert (reviewed.pr_number, reviewed.head_sha, reviewed.digest) == (pr, HEAD, DIGEST)
    assert reviewed.metadata["run_id"] == 4242
    assert reviewed.plan == PLAN


def test_the_token_does_not_follow_the_redirect_to_storage(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    pr = seed(fake_github)
    fake_github.add_artifact(artifact_name(pr, HEAD), {PLAN_FILE: json.dumps(PLAN)})
    reviewed_plan(github_client, fake_github.repo, MERGE, TARGET)
    (api,) = fake_github.requests_to("/zip")
    (storage,) = fake_github.requests_to("/_storage/")
    assert api.host == "127.0.0.1"
    assert api.authorization == f"Bearer {fake_github.token}"
    assert storage.host == "localhost"
    assert storage.authorization is None
    assert all(fake_github.token not in value for value in storage.headers.values())


def test_no_pr_merged_as_this_commit(fake_github: FakeGitHub, github_client: GitHubClient) -> None:
    fake_github.add_pull(head_sha="c" * 40, commits=(MERGE,))  # open, merely contains it
    assert "no pull request was merged as commit mmmmmmmmmmmm" in no_plan(
        github_client, fake_github
    )


def test_no_plan_comment_for_this_target(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    pr = fake_github.add_pull(head_sha=HEAD, merge_commit_sha=MERGE, merged=True)
    fake_github.add_comment(pr, f"{plan_marker('sandbox (x.db)')}\n{format_metadata({})}")
    fake_github.add_comment(pr, f"{plan_marker(TARGET)}\nforged", login="mallory")
    assert f"PR #{pr} has no plan comment for target {TARGET}" in no_plan(
        github_client, fake_github
    )


def test_the_comment_planned_an_older_commit(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    seed(fake_github, head="0123456789ab" + "0" * 28)
    reason = no_plan(github_client, fake_github)
    assert "planned commit 0123456789ab but the PR's head was aaaaaaaaaaaa" in reason
    assert "did not finish" in reason


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        (None, "carries no readable metadata"),
        ({"digest": DIGEST}, "does not say which commit it planned"),
        (
            {"head_sha": HEAD, "exit_code": 1},
            "records no changes digest (the plan ended with exit code 1)",
        ),
        ({"head_sha": HEAD, "digest": DIGEST, "target": "sandbox (x.db)"}, "names target"),
    ],
)
def test_unreadable_metadata(
    fake_github: FakeGitHub,
    github_client: GitHubClient,
    metadata: dict[str, object] | None,
    expected: str,
) -> None:
    pr = fake_github.add_pull(head_sha=HEAD, merge_commit_sha=MERGE, merged=True)
    line = format_metadata(metadata) if metadata is not None else "<!-- rovo-reconcile:reviewed {"
    fake_github.add_comment(pr, f"{plan_marker(TARGET)}\n{line}\n")
    assert expected in no_plan(github_client, fake_github)


def test_a_missing_artifact_is_no_reviewed_plan(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    seed(fake_github)
    assert "no unexpired artifact" in no_plan(github_client, fake_github)


def test_an_artifact_of_another_run_is_no_reviewed_plan(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    pr = seed(fake_github)
    artifact = fake_github.add_artifact(artifact_name(pr, HEAD), {PLAN_FILE: json.dumps(PLAN)})
    fake_github.artifacts[artifact]["workflow_run"]["id"] = 999
    assert "came from run 999" in no_plan(github_client, fake_github)


def test_an_artifact_with_another_digest_is_no_reviewed_plan(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    pr = seed(fake_github)
    other = {**PLAN, "changes_digest": "sha256:" + "2" * 64}
    fake_github.add_artifact(artifact_name(pr, HEAD), {PLAN_FILE: json.dumps(other)})
    assert "is not the one recorded in the plan comment" in no_plan(github_client, fake_github)


def test_a_comment_edited_after_its_run_is_no_reviewed_plan(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    pr = seed(fake_github)
    fake_github.add_artifact(artifact_name(pr, HEAD), {PLAN_FILE: json.dumps(PLAN)})
    (comment,) = fake_github.comments_on(pr)
    comment["updated_at"] = "2099-01-01T00:00:00Z"
    assert "was edited after its plan run" in no_plan(github_client, fake_github)


def test_the_newest_unexpired_artifact_is_used(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    name = artifact_name(1, HEAD)
    fake_github.add_artifact(name, {PLAN_FILE: json.dumps({"run": "old"})})
    fake_github.add_artifact(name, {PLAN_FILE: json.dumps({"run": "rerun"})})
    fake_github.add_artifact(name, {PLAN_FILE: json.dumps({"run": "gone"})}, expired=True)
    fake_github.add_artifact("other", {PLAN_FILE: json.dumps({"run": "other"})})
    assert download_plan(github_client, fake_github.repo, name) == {"run": "rerun"}


def test_a_pr_merged_by_rebase_is_found_as_the_only_merged_one(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    pr = fake_github.add_pull(
        head_sha=HEAD, merge_commit_sha="e" * 40, merged=True, commits=("r" * 40,)
    )
    fake_github.add_pull(head_sha="d" * 40, commits=("r" * 40,))  # open
    merged = find_merged_pr(github_client, fake_github.repo, "r" * 40)
    assert merged is not None
    assert merged.number == pr


def test_the_pr_whose_merge_commit_matches_wins(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    fake_github.add_pull(
        head_sha="1" * 40, merge_commit_sha="2" * 40, merged=True, commits=(MERGE,)
    )
    pr = fake_github.add_pull(head_sha=HEAD, merge_commit_sha=MERGE, merged=True)
    merged = find_merged_pr(github_client, fake_github.repo, MERGE)
    assert merged is not None
    assert (merged.number, merged.head_sha) == (pr, HEAD)


def zip_bomb(size: int) -> bytes:
    buffer = io.BytesIO()
    block = b" " * (1024 * 1024)
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open(PLAN_FILE, "w", force_zip64=True) as member,
    ):
        for _ in range(size // len(block)):
            member.write(block)
    return buffer.getvalue()


def test_a_zip_bomb_is_refused(fake_github: FakeGitHub, github_client: GitHubClient) -> None:
    pr = seed(fake_github)
    bomb = zip_bomb(51 * 1024 * 1024)
    assert len(bomb) < 1024 * 1024
    fake_github.add_artifact(artifact_name(pr, HEAD), zip_bytes=bomb)
    with pytest.raises(ArtifactError, match="over the 52,428,800 cap: refused"):
        download_plan(github_client, fake_github.repo, artifact_name(pr, HEAD))
    assert "refused" in no_plan(github_client, fake_github)


def test_a_download_larger_than_the_cap_is_cut_off(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    name = artifact_name(1, HEAD)
    fake_github.add_artifact(name, zip_bytes=b"x" * 200_000)
    fake_github.artifacts[max(fake_github.artifacts)]["size_in_bytes"] = 10  # it lies
    with pytest.raises(ArtifactError, match="larger than 100,000 bytes"):
        download_plan(github_client, fake_github.repo, name, max_bytes=100_000)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"not a zip", "not a readable zip"),
        (make_zip({"other.json": "{}"}), f"holds no {PLAN_FILE}"),
        (make_zip({PLAN_FILE: "{oops"}), "not valid JSON"),
        (make_zip({PLAN_FILE: "[]"}), "holds no JSON object"),
    ],
)
def test_a_bad_artifact_is_a_clear_error(data: bytes, expected: str) -> None:
    with pytest.raises(ArtifactError, match=expected):
        read_plan_zip(data, name="plan")


def test_a_plan_in_a_folder_of_the_zip_is_found() -> None:
    assert read_plan_zip(make_zip({f"out/{PLAN_FILE}": "{}"})) == {}


def test_a_zip_that_understates_its_size_is_refused() -> None:
    data = bytearray(make_zip({PLAN_FILE: json.dumps({"pad": " " * 100_000})}))
    central = data.rindex(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")  # declared: 10 bytes
    with pytest.raises(ArtifactError, match="not a readable zip"):
        read_plan_zip(bytes(data))


def test_a_storage_failure_names_the_host_but_not_the_signed_url(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    name = artifact_name(1, HEAD)
    artifact_id = fake_github.add_artifact(name, {PLAN_FILE: "{}"})
    del fake_github.blobs[artifact_id]
    with pytest.raises(
        ArtifactError, match=r"download from localhost/_storage/\d+ failed: HTTP 404"
    ) as caught:
        download_plan(github_client, fake_github.repo, name)
    assert "sig=" not in str(caught.value)
    assert fake_github.token not in str(caught.value)


def test_an_artifact_that_cannot_be_fetched_is_no_reviewed_plan(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    pr = seed(fake_github)
    fake_github.add_artifact(artifact_name(pr, HEAD), {PLAN_FILE: "{}"})
    fake_github.fail_next(
        1, status=403, message="Resource not accessible by integration", path_contains="/actions/"
    )
    assert "HTTP 403: Resource not accessible by integration" in no_plan(github_client, fake_github)
