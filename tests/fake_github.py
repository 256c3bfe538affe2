"""A fake GitHub REST API on a loopback socket: the endpoints the `github` glue uses, nothing more.

A starlette app served by uvicorn in a background thread (one per test session), with its state
in memory and reset before each test. Shapes follow GitHub's REST documentation (API version
2022-11-28): issue comments, issues (pull requests included, marked by `pull_request`), labels,
"list pull requests associated with a commit", artifacts and their download.

    def test_x(fake_github: FakeGitHub, github_client: GitHubClient) -> None:
        pr = fake_github.add_pull(head_sha="a" * 40, merge_commit_sha="b" * 40, merged=True)
        fake_github.add_comment(pr, "<!-- marker -->\\nbody")            # by the bot
        fake_github.add_comment(pr, "<!-- marker -->", login="octocat")  # by a human
        fake_github.add_artifact("name", {"rovo-reconcile-plan.json": b"{}"})
        fake_github.fail_next(2, status=502)                               # the next 2 API calls
        ... call the code under test with github_client ...
        fake_github.comments_on(pr); fake_github.issues; fake_github.requests; fake_github.slept

Honest where the client could be wrong: pagination by `page`/`per_page` with a `Link` header
(`max_per_page` forces small pages), 401 `Bad credentials` for a wrong token, 422
`already_exists` for a duplicate label, and artifact downloads answered with 302 to
`http://localhost:PORT/_storage/...`: the same server under another host name, so the
origin differs and `requests` shows whether the Authorization header followed the redirect
(the storage answers 400 if it did, as a signed-URL store would).
"""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rovo_reconcile.api.secrets import Secret
from rovo_reconcile.github.client import GitHubClient

__all__ = [
    "BOT_LOGIN",
    "REPO",
    "TOKEN",
    "FakeGitHub",
    "LoggedRequest",
    "fake_github",
    "github_client",
    "github_env",
    "github_server",
    "make_zip",
    "parse_github_output",
]

REPO = "acme/policies"
TOKEN = "ghs_fakeToken0123456789abcdefABCDEF"
BOT_LOGIN = "github-actions[bot]"
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
_DOCS = "https://docs.github.com/rest"

Json = dict[str, Any]
Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    host: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Lower-case names, as received."""
    body: Any

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass
class _Failure:
    status: int
    headers: dict[str, str]
    body: Json
    path_contains: str


def make_zip(files: Mapping[str, bytes | str]) -> bytes:
    """A zip as actions/upload-artifact makes one: each file at the root, deflated."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def parse_github_output(text: str) -> dict[str, str]:
    """Read a $GITHUB_OUTPUT file as the runner does (`name=value` and `name<<DELIM` forms)."""
    outputs: dict[str, str] = {}
    lines = iter(text.split("\n"))
    for line in lines:
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            value: list[str] = []
            for inner in lines:
                if inner == delimiter:
                    break
                value.append(inner)
            else:
                raise ValueError(f"output {name!r}: delimiter {delimiter!r} never closes")
            outputs[name] = "\n".join(value)
        else:
            name, value_text = line.split("=", 1)
            outputs[name] = value_text
    return outputs


@dataclass
class FakeGitHub:
    """The state of the fake (one repository, `REPO`) and the knobs tests turn."""

    url: str = ""
    """http://127.0.0.1:PORT, the GITHUB_API_URL to use."""
    storage_url: str = ""
    """http://localhost:PORT: the same server under a host name of a different origin."""
    token: str = TOKEN
    repo: str = REPO
    bot_login: str = BOT_LOGIN
    max_per_page: int = 100
    """Lower it to force pagination with few items."""
    issues: dict[int, Json] = field(default_factory=dict)
    """Issues and pull requests by number (one number space, as on GitHub)."""
    comments: dict[int, Json] = field(default_factory=dict)
    labels: dict[str, Json] = field(default_factory=dict)
    pulls: dict[int, Json] = field(default_factory=dict)
    commit_pulls: dict[str, list[int]] = field(default_factory=dict)
    artifacts: dict[int, Json] = field(default_factory=dict)
    blobs: dict[int, bytes] = field(default_factory=dict)
    default_branch: str = "main"
    branches: dict[str, str] = field(default_factory=dict)
    """Branch name -> the commit at its head."""
    git_trees: dict[str, Json] = field(default_factory=dict)
    """Trees made through the Git data API: `{base_tree, files: {path: (mode, content)}}`."""
    git_commits: dict[str, Json] = field(default_factory=dict)
    """Commits made through the Git data API: `{tree, parents, message}`."""
    requests: list[LoggedRequest] = field(default_factory=list)
    slept: list[float] = field(default_factory=list)
    """Waits the `github_client` fixture's client asked for (its injected sleep)."""
    _failures: list[_Failure] = field(default_factory=list)
    _next_id: int = 1000
    _next_number: int = 1
    _tick: int = 0

    def reset(self) -> None:
        keep = (self.url, self.storage_url)
        fresh = FakeGitHub()
        for name in fresh.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))
        self.url, self.storage_url = keep

    # -- seeding ----------------------------------------------------------------------------

    def _now(self) -> str:
        self._tick += 1
        return _stamp(_EPOCH + timedelta(seconds=self._tick))

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _user(self, login: str) -> Json:
        kind = "Bot" if login.endswith("[bot]") else "User"
        return {"login": login, "id": abs(hash(login)) % 10**8, "type": kind}

    def _html(self, path: str) -> str:
        return f"https://github.com/{self.repo}/{path}"

    def add_issue(
        self,
        title: str,
        body: str,
        *,
        labels: tuple[str, ...] = (),
        login: str = BOT_LOGIN,
        state: str = "open",
    ) -> int:
        number = self._next_number
        self._next_number += 1
        now = self._now()
        for label in labels:
            self._label(label)
        self.issues[number] = {
            "id": self._id(),
            "number": number,
            "title": title,
            "body": body,
            "state": state,
            "state_reason": None,
            "labels": [self._label(label) for label in labels],
            "user": self._user(login),
            "created_at": now,
            "updated_at": now,
            "closed_at": None,
            "url": f"{self.url}/repos/{self.repo}/issues/{number}",
            "html_url": self._html(f"issues/{number}"),
        }
        return number

    def add_pull(
        self,
        *,
        head_sha: str,
        merge_commit_sha: str | None = None,
        merged: bool = False,
        head_repo: str | None = None,
        base_sha: str = "0" * 40,
        labels: tuple[str, ...] = (),
        commits: tuple[str, ...] = (),
        title: str = "Change policies",
    ) -> int:
        """A PR; merged ones get `merged_at`. It is listed for its head, merge and `commits`."""
        number = self.add_issue(title, "", labels=labels, login="octocat")
        issue = self.issues[number]
        issue["pull_request"] = {
            "url": f"{self.url}/repos/{self.repo}/pulls/{number}",
            "html_url": self._html(f"pull/{number}"),
            "merged_at": None,
        }
        merged_at = self._now() if merged else None
        if merged:
            issue.update(state="closed", closed_at=merged_at)
            issue["pull_request"]["merged_at"] = merged_at
        self.pulls[number] = {
            "id": self._id(),
            "number": number,
            "state": "closed" if merged else "open",
            "title": title,
            "user": self._user("octocat"),
            "created_at": issue["created_at"],
            "updated_at": issue["updated_at"],
            "closed_at": merged_at,
            "merged_at": merged_at,
            "merge_commit_sha": merge_commit_sha,
            "draft": False,
            "head": {
                "label": "octocat:change",
                "ref": "change",
                "sha": head_sha,
                "repo": {"full_name": head_repo or self.repo},
            },
            "base": {
                "label": "acme:main",
                "ref": "main",
                "sha": base_sha,
                "repo": {"full_name": self.repo},
            },
            "url": f"{self.url}/repos/{self.repo}/pulls/{number}",
            "html_url": self._html(f"pull/{number}"),
        }
        for sha in {head_sha, merge_commit_sha, *commits} - {None}:
            assert sha is not None
            self.commit_pulls.setdefault(sha, []).append(number)
        return number

    def add_comment(self, issue_number: int, body: str, *, login: str = BOT_LOGIN) -> int:
        comment_id = self._id()
        now = self._now()
        self.comments[comment_id] = {
            "id": comment_id,
            "node_id": f"IC_{comment_id}",
            "body": body,
            "user": self._user(login),
            "created_at": now,
            "updated_at": now,
            "author_association": "NONE" if login.endswith("[bot]") else "MEMBER",
            "issue_url": f"{self.url}/repos/{self.repo}/issues/{issue_number}",
            "url": f"{self.url}/repos/{self.repo}/issues/comments/{comment_id}",
            "html_url": self._html(f"issues/{issue_number}#issuecomment-{comment_id}"),
            "_issue": issue_number,
        }
        return comment_id

    def add_artifact(
        self,
        name: str,
        files: Mapping[str, bytes | str] | None = None,
        *,
        zip_bytes: bytes | None = None,
        expired: bool = False,
        head_sha: str = "0" * 40,
    ) -> int:
        """An artifact holding `files` (zipped here) or the given `zip_bytes` as they are."""
        artifact_id = self._id()
        blob = zip_bytes if zip_bytes is not None else make_zip(files or {})
        now = self._now()
        self.blobs[artifact_id] = blob
        self.artifacts[artifact_id] = {
            "id": artifact_id,
            "node_id": f"MDg6QXJ0aWZhY3Q{artifact_id}",
            "name": name,
            "size_in_bytes": len(blob),
            "url": f"{self.url}/repos/{self.repo}/actions/artifacts/{artifact_id}",
            "archive_download_url": (
                f"{self.url}/repos/{self.repo}/actions/artifacts/{artifact_id}/zip"
            ),
            "expired": expired,
            "created_at": now,
            "updated_at": now,
            "expires_at": _stamp(_EPOCH + timedelta(days=90)),
            "workflow_run": {"id": 4242, "head_sha": head_sha, "head_branch": "change"},
        }
        return artifact_id

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 502,
        headers: Mapping[str, str] | None = None,
        message: str = "Server Error",
        path_contains: str = "",
    ) -> None:
        """The next `count` API requests (not storage) whose path contains `path_contains`
        answer `status` without doing anything."""
        for _ in range(count):
            failure = _Failure(status, dict(headers or {}), {"message": message}, path_contains)
            self._failures.append(failure)

    # -- inspecting -------------------------------------------------------------------------

    def comments_on(self, issue_number: int) -> list[Json]:
        return [c for c in self.comments.values() if c["_issue"] == issue_number]

    def requests_to(self, path_part: str, method: str | None = None) -> list[LoggedRequest]:
        return [
            r
            for r in self.requests
            if path_part in r.path and (method is None or r.method == method)
        ]

    # -- the app ----------------------------------------------------------------------------

    def app(self) -> Starlette:
        base = "/repos/{owner}/{name}"
        api = self._api
        routes = [
            Route(
                f"{base}/issues/comments/{{comment_id:int}}",
                api(self._comment),
                methods=["GET", "PATCH", "DELETE"],
            ),
            Route(
                f"{base}/issues/{{number:int}}/comments",
                api(self._issue_comments),
                methods=["GET", "POST"],
            ),
            Route(f"{base}/issues/{{number:int}}", api(self._issue), methods=["GET", "PATCH"]),
            Route(f"{base}/issues", api(self._issues), methods=["GET", "POST"]),
            Route(f"{base}/labels", api(self._labels), methods=["GET", "POST"]),
            Route(f"{base}/commits/{{sha}}/pulls", api(self._commit_pulls), methods=["GET"]),
            Route(f"{base}/pulls/{{number:int}}", api(self._pull), methods=["GET", "PATCH"]),
            Route(f"{base}/pulls", api(self._pulls), methods=["GET", "POST"]),
            Route(f"{base}/git/commits/{{sha}}", api(self._git_commit), methods=["GET"]),
            Route(f"{base}/git/commits", api(self._git_commits), methods=["POST"]),
            Route(f"{base}/git/trees", api(self._git_trees), methods=["POST"]),
            Route(f"{base}/git/ref/heads/{{branch:path}}", api(self._git_ref), methods=["GET"]),
            Route(
                f"{base}/git/refs/heads/{{branch:path}}",
                api(self._git_ref),
                methods=["PATCH", "DELETE"],
            ),
            Route(f"{base}/git/refs", api(self._git_refs), methods=["POST"]),
            Route(f"{base}/branches/{{branch}}", api(self._branch), methods=["GET"]),
            Route(base, api(self._repository), methods=["GET"]),
            Route(f"{base}/actions/artifacts", api(self._artifacts), methods=["GET"]),
            Route(
                f"{base}/actions/artifacts/{{artifact_id:int}}/{{archive_format}}",
                api(self._download),
                methods=["GET"],
            ),
            Route("/_storage/{artifact_id:int}", self._storage, methods=["GET"]),
        ]
        return Starlette(routes=routes)

    async def _log(self, request: Request) -> Any:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        self.requests.append(
            LoggedRequest(
                method=request.method,
                host=request.url.hostname or "",
                path=request.url.path,
                query=dict(request.query_params),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
            )
        )
        return body

    def _api(self, handler: Callable[[Request, Any], Response]) -> Handler:
        async def endpoint(request: Request) -> Response:
            body = await self._log(request)
            failure = next((f for f in self._failures if f.path_contains in request.url.path), None)
            if failure is not None:
                self._failures.remove(failure)
                return _error(failure.status, failure.body["message"], headers=failure.headers)
            if request.headers.get("authorization") not in (
                f"Bearer {self.token}",
                f"token {self.token}",
            ):
                return _error(401, "Bad credentials")
            owner, name = request.path_params["owner"], request.path_params["name"]
            if f"{owner}/{name}".lower() != self.repo.lower():
                return _error(404, "Not Found")
            return handler(request, body)

        return endpoint

    def _page(self, request: Request, items: list[Json], *, wrap: str | None = None) -> Response:
        query = request.query_params
        try:
            per_page = max(1, min(int(query.get("per_page", "30")), 100, self.max_per_page))
            page = max(1, int(query.get("page", "1")))
        except ValueError:
            return _error(422, "Validation Failed")
        last = max(1, -(-len(items) // per_page))
        chunk = [_public(item) for item in items[(page - 1) * per_page : page * per_page]]
        links = []

        def link(n: int, rel: str) -> str:
            url = request.url.include_query_params(page=n, per_page=per_page)
            return f'<{url}>; rel="{rel}"'

        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(page - 1, "prev")]
        headers = {"Link": ", ".join(links)} if links else {}
        content: Any = {"total_count": len(items), wrap: chunk} if wrap else chunk
        return JSONResponse(content, headers=headers)

    # -- endpoints ----------------------------------------------------------------------------

    def _issue_comments(self, request: Request, body: Any) -> Response:
        number = request.path_params["number"]
        if number not in self.issues:
            return _error(404, "Not Found")
        if request.method == "GET":
            return self._page(request, self.comments_on(number))
        if not isinstance(body, dict) or not isinstance(body.get("body"), str):
            return _error(422, 'Invalid request.\n\n"body" wasn\'t supplied.')
        comment_id = self.add_comment(number, body["body"], login=self.bot_login)
        return JSONResponse(_public(self.comments[comment_id]), status_code=201)

    def _comment(self, request: Request, body: Any) -> Response:
        comment = self.comments.get(request.path_params["comment_id"])
        if comment is None:
            return _error(404, "Not Found")
        if request.method == "DELETE":
            del self.comments[comment["id"]]
            return Response(status_code=204)
        if request.method == "PATCH":
            if not isinstance(body, dict) or not isinstance(body.get("body"), str):
                return _error(422, 'Invalid request.\n\n"body" wasn\'t supplied.')
            comment.update(body=body["body"], updated_at=self._now())
        return JSONResponse(_public(comment))

    def _issues(self, request: Request, body: Any) -> Response:
        if request.method == "POST":
            if not isinstance(body, dict) or not isinstance(body.get("title"), str):
                return _error(422, 'Invalid request.\n\n"title" wasn\'t supplied.')
            number = self.add_issue(
                body["title"],
                str(body.get("body") or ""),
                labels=tuple(body.get("labels") or ()),
                login=self.bot_login,
            )
            return JSONResponse(_public(self.issues[number]), status_code=201)
        query = request.query_params
        state = query.get("state", "open")
        wanted = {label for label in query.get("labels", "").split(",") if label}
        items = [
            issue
            for issue in self.issues.values()
            if (state == "all" or issue["state"] == state)
            and wanted <= {label["name"] for label in issue["labels"]}
        ]
        items.sort(key=lambda i: i["created_at"], reverse=query.get("direction", "desc") == "desc")
        return self._page(request, items)

    def _issue(self, request: Request, body: Any) -> Response:
        issue = self.issues.get(request.path_params["number"])
        if issue is None:
            return _error(404, "Not Found")
        if request.method == "PATCH":
            if not isinstance(body, dict):
                return _error(400, "Problems parsing JSON")
            for key in ("title", "body"):
                if key in body:
                    issue[key] = body[key]
            if body.get("state") in ("open", "closed"):
                closing = body["state"] == "closed"
                issue.update(
                    state=body["state"],
                    state_reason=body.get("state_reason") if closing else "reopened",
                    closed_at=self._now() if closing else None,
                )
            if "labels" in body:
                issue["labels"] = [self._label(label) for label in body["labels"]]
            issue["updated_at"] = self._now()
        return JSONResponse(_public(issue))

    def _label(self, name: str) -> Json:
        if name not in self.labels:
            self.labels[name] = {
                "id": self._id(),
                "name": name,
                "color": "ededed",
                "description": None,
                "default": False,
            }
        return self.labels[name]

    def _labels(self, request: Request, body: Any) -> Response:
        if request.method == "GET":
            return self._page(request, list(self.labels.values()))
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            return _error(
                422,
                "Validation Failed",
                errors=[{"resource": "Label", "code": "missing_field", "field": "name"}],
            )
        if body["name"] in self.labels:
            return _error(
                422,
                "Validation Failed",
                errors=[{"resource": "Label", "code": "already_exists", "field": "name"}],
            )
        label = self._label(body["name"])
        label.update(color=body.get("color", "ededed"), description=body.get("description"))
        return JSONResponse(label, status_code=201)

    def _commit_pulls(self, request: Request, body: Any) -> Response:
        numbers = self.commit_pulls.get(request.path_params["sha"], [])
        return self._page(request, [self.pulls[n] for n in numbers])

    def _repository(self, request: Request, body: Any) -> Response:
        return JSONResponse({"full_name": self.repo, "default_branch": self.default_branch})

    def _branch(self, request: Request, body: Any) -> Response:
        name = request.path_params["branch"]
        if name not in self.branches:
            return _error(404, "Branch not found")
        return JSONResponse({"name": name, "commit": {"sha": self.branches[name]}})

    def _pull(self, request: Request, body: Any) -> Response:
        pull = self.pulls.get(request.path_params["number"])
        if pull is None:
            return _error(404, "Not Found")
        if request.method == "PATCH":
            changes = {k: v for k, v in (body or {}).items() if k in ("title", "body", "state")}
            pull.update(changes, updated_at=self._now())
            self.issues[pull["number"]].update(changes)
        return JSONResponse({**pull, "merged": pull["merged_at"] is not None})

    def _pulls(self, request: Request, body: Any) -> Response:
        if request.method == "GET":
            state = request.query_params.get("state", "open")
            head = request.query_params.get("head")
            found = [
                p
                for p in self.pulls.values()
                if state in ("all", p["state"]) and (head is None or p["head"]["label"] == head)
            ]
            return self._page(request, found)
        owner = self.repo.split("/")[0]
        label = f"{owner}:{body['head']}"
        if any(p["head"]["label"] == label and p["state"] == "open" for p in self.pulls.values()):
            return _error(422, f"A pull request already exists for {label}.")
        if body["head"] not in self.branches:
            return _error(422, "Validation Failed: head does not exist")
        number = self.add_pull(head_sha=self.branches[body["head"]], title=body["title"])
        pull = self.pulls[number]
        pull["head"].update(label=label, ref=body["head"])
        pull["base"]["ref"] = body["base"]
        pull["body"] = self.issues[number]["body"] = body.get("body", "")
        return JSONResponse(pull, status_code=201)

    def pull_files(self, number: int) -> dict[str, str]:
        """What the pull request's head commit changed: path -> content (Git data API commits)."""
        commit = self.git_commits[self.branches[self.pulls[number]["head"]["ref"]]]
        return {
            path: content for path, (_, content) in self.git_trees[commit["tree"]]["files"].items()
        }

    def _git_commit(self, request: Request, body: Any) -> Response:
        sha = request.path_params["sha"]
        made = self.git_commits.get(sha)
        tree = made["tree"] if made else f"tree-{sha}"  # any other commit exists, with its tree
        return JSONResponse({"sha": sha, "tree": {"sha": tree}, "parents": []})

    def _git_commits(self, request: Request, body: Any) -> Response:
        sha = f"{self._id():040x}"
        self.git_commits[sha] = {k: body[k] for k in ("tree", "parents", "message")}
        return JSONResponse({"sha": sha}, status_code=201)

    def _git_trees(self, request: Request, body: Any) -> Response:
        sha = f"tree-{self._id()}"
        files = {e["path"]: (e["mode"], e["content"]) for e in body["tree"]}
        self.git_trees[sha] = {"base_tree": body.get("base_tree"), "files": files}
        return JSONResponse({"sha": sha}, status_code=201)

    def _git_refs(self, request: Request, body: Any) -> Response:
        branch = body["ref"].removeprefix("refs/heads/")
        if branch in self.branches:
            return _error(422, "Reference already exists")
        self.branches[branch] = body["sha"]
        return JSONResponse({"ref": body["ref"], "object": {"sha": body["sha"]}}, status_code=201)

    def _git_ref(self, request: Request, body: Any) -> Response:
        branch = request.path_params["branch"]
        if branch not in self.branches:
            return _error(404, "Not Found")
        if request.method == "DELETE":
            del self.branches[branch]
            return Response(status_code=204)
        if request.method == "PATCH":
            self.branches[branch] = body["sha"]
        return JSONResponse(
            {"ref": f"refs/heads/{branch}", "object": {"sha": self.branches[branch]}}
        )

    def _artifacts(self, request: Request, body: Any) -> Response:
        name = request.query_params.get("name")
        items = [a for a in self.artifacts.values() if name is None or a["name"] == name]
        items.sort(key=lambda a: (a["created_at"], a["id"]), reverse=True)
        return self._page(request, items, wrap="artifacts")

    def _download(self, request: Request, body: Any) -> Response:
        artifact = self.artifacts.get(request.path_params["artifact_id"])
        if artifact is None or request.path_params["archive_format"] != "zip":
            return _error(404, "Not Found")
        if artifact["expired"]:
            return _error(410, "Artifact has expired")
        location = f"{self.storage_url}/_storage/{artifact['id']}?sig=s3cr3t-signature&se=1m"
        return Response(status_code=302, headers={"Location": location})

    async def _storage(self, request: Request) -> Response:
        await self._log(request)
        if request.headers.get("authorization"):
            return Response(
                "<Error><Code>InvalidAuthenticationInfo</Code></Error>",
                status_code=400,
                media_type="application/xml",
            )
        if request.url.hostname != "localhost" or request.query_params.get("sig") is None:
            return Response(
                "<Error><Code>AuthenticationFailed</Code></Error>",
                status_code=403,
                media_type="application/xml",
            )
        blob = self.blobs.get(request.path_params["artifact_id"])
        if blob is None:
            return Response(
                "<Error><Code>BlobNotFound</Code></Error>",
                status_code=404,
                media_type="application/xml",
            )
        return Response(blob, media_type="application/zip")


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _public(item: Json) -> Json:
    """The item as GitHub shows it: without the fake's bookkeeping keys."""
    return {k: v for k, v in item.items() if not k.startswith("_")}


def _error(
    status: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    errors: list[Json] | None = None,
) -> JSONResponse:
    body: Json = {"message": message, "documentation_url": _DOCS, "status": str(status)}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


class _Server:
    """uvicorn on 127.0.0.1, a free port, in a daemon thread."""

    def __init__(self, fake: FakeGitHub) -> None:
        config = uvicorn.Config(
            fake.app(),
            host="127.0.0.1",
            port=0,
            log_level="error",
            access_log=False,
            lifespan="off",
            ws="none",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="fake-github", daemon=True)

    def start(self) -> int:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake GitHub server did not start")
            time.sleep(0.01)
        port: int = self.server.servers[0].sockets[0].getsockname()[1]
        return port

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def github_server() -> Iterator[FakeGitHub]:
    """The fake, serving for the whole session; use `fake_github` in tests (it resets state)."""
    fake = FakeGitHub()
    server = _Server(fake)
    port = server.start()
    fake.url, fake.storage_url = f"http://127.0.0.1:{port}", f"http://localhost:{port}"
    yield fake
    server.stop()


@pytest.fixture
def fake_github(github_server: FakeGitHub) -> FakeGitHub:
    """The session's fake GitHub with empty state."""
    github_server.reset()
    return github_server


@pytest.fixture
def github_client(fake_github: FakeGitHub) -> Iterator[GitHubClient]:
    """A client for the fake with the right token; its waits land in `fake_github.slept`."""
    with GitHubClient(
        fake_github.url, Secret(fake_github.token), sleep=fake_github.slept.append
    ) as client:
        yield client


def github_env(
    fake: FakeGitHub,
    tmp_path: Path,
    *,
    event_name: str = "pull_request",
    event: Json | None = None,
    sha: str = "f" * 40,
    run_id: str = "4242",
) -> dict[str, str]:
    """GITHUB_* variables as a runner sets them, pointing at the fake and at files in tmp_path."""
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(event or {}), encoding="utf-8")
    for name in ("github_output", "step_summary"):
        (tmp_path / name).touch()
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_API_URL": fake.url,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": fake.repo,
        "GITHUB_TOKEN": fake.token,
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_SHA": sha,
        "GITHUB_RUN_ID": run_id,
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_OUTPUT": str(tmp_path / "github_output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "step_summary"),
    }
