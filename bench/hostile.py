"""Hostile bench: a catalogue of hostile Admin API behaviours, each run against `plan` and
`apply` through the CLI (`--api-url`, a short `--timeout`); prints one table.

Every case gets a fresh hostile server (`tests/hostile_api.py`: a loopback stdlib server in
front of the emulator app, in-process) holding one org seeded with two enabled allowlists, two
MCP domains and its settings; the policy changes one list, creates one, deletes one, swaps a
domain and flips a setting, so `apply` has five kinds of write to make. The behaviour then
breaks one endpoint (a malformed body of each read endpoint, a 3xx, huge, endless or
trickling answers, 429 storms, a 5xx after a write landed, a duplicate name appearing between
plan and apply) and the command runs as a subprocess with `--timeout` seconds per request.

Columns: behaviour; command; exit code; seconds; writes after a bad read (for `plan`, every
write, since it is read-only; for `apply`, writes the server saw after it first served the
bad answer; `-` when the behaviour is no bad read) - must be 0; duplicates (allowlists
sharing a name at the end, beyond any the behaviour itself made) - must be 0; internal errors
(a traceback or "internal error" in the output) - must be 0; hung (the command still running
after --deadline seconds, then killed) - must be 0. Exits 1 when a must-be-zero column is not
0.

Usage: python bench/hostile.py [--timeout S] [--deadline S] [--jobs N] [--only SUBSTRING]
                               [--verbose]
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tests.hostile_api as hostile_module  # noqa: E402
from tests.apply_helpers import policy_body as enabled_policy_body  # noqa: E402
from tests.hostile_api import Answer, HostileApi, Request, hostile_api  # noqa: E402

Handler = type[BaseHTTPRequestHandler]


def _no_delay(make: Callable[[HostileApi], Handler]) -> Callable[[HostileApi], Handler]:
    """The server's handler with TCP_NODELAY: it sends headers and body in two writes, and
    Nagle's algorithm with the client's delayed ACK would add ~40 ms to every answer (1,000
    pages of an endless cursor: 45 s of the bench server's making, not the client's)."""

    def handler(api: HostileApi) -> Handler:
        return type("NoDelayHandler", (make(api),), {"disable_nagle_algorithm": True})

    return handler


hostile_module._handler = _no_delay(hostile_module._handler)  # type: ignore[assignment]

ORG = "org-hostile"
BASE = f"/admin/control/v1/orgs/{ORG}"
POLICIES = r"/policies$"
POLICY = r"/policies/[^/]+$"
WORKSPACES = r"/workspaces$"
SETTINGS = r"/rovo-mcp/settings$"
DOMAINS = r"/rovo-mcp/domains$"
DOMAIN = r"/rovo-mcp/domains/[^/]+$"
MUST_ALLOW = "52.14.1.1"
MIB = 1024 * 1024

POLICY_YAML = f"""\
apiVersion: rovo-reconcile/v1
kind: OrgPolicy
org: {{id: {ORG}}}
ipAllowlists:
  - {{name: Office, enabled: true, apps: [jira, confluence], addresses: [52.14.0.0/16, 19.0.0.0/8]}}
  - {{name: Lab, enabled: true, apps: [jira], addresses: [52.14.0.0/16, 4.4.4.0/24]}}
mcp:
  domains: ['https://a.example.com/**', 'https://c.example.com/**']
  allowAtlassianSupportedDomains: true
guards: {{mustAllow: [{MUST_ALLOW}], maxDeletePercent: 100}}
"""

ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("ROVO_RECONCILE_")},
    "ATLASSIAN_ADMIN_API_KEY": "hostile-bench-key",
    "NO_COLOR": "1",
}


# ------------------------------------------------------------------ the org


def seed(api: HostileApi) -> None:
    """Office (Jira, Confluence) and Old (Confluence), both admitting MUST_ALLOW; two domains."""
    workspaces = api.upstream("POST", f"/admin/v2/orgs/{ORG}/workspaces", {})["data"]
    by_type: dict[str, list[str]] = {}
    for w in workspaces:
        by_type.setdefault(w["attributes"]["typeKey"], []).append(w["id"])
    lists = [
        ("Office", ["jira-software", "confluence"], ["52.14.0.0/16", "18.0.0.0/8"]),
        ("Old", ["confluence"], ["52.14.0.0/16", "3.3.3.0/24"]),
    ]
    for name, types, addresses in lists:
        api.upstream("POST", f"{BASE}/policies", policy_body(name, types, addresses, by_type))
    for host in ("a", "b"):
        body = {
            "data": {
                "type": "rovo-mcp-domain",
                "attributes": {"pattern": f"https://{host}.example.com/**"},
            }
        }
        api.upstream("POST", f"{BASE}/rovo-mcp/domains", body)
    body = {
        "data": {
            "type": "rovo-mcp-settings",
            "attributes": {"allowAtlassianSupportedDomains": False},
        }
    }
    api.upstream("PATCH", f"{BASE}/rovo-mcp/settings", body)


def policy_body(
    name: str, types: list[str], addresses: list[str], by_type: dict[str, list[str]]
) -> dict[str, Any]:
    """An enabled allowlist on every workspace of `types` (the tests' body builder)."""
    resources = [i for t in types for i in by_type.get(t, [])]
    return enabled_policy_body(name, "enabled", addresses, resources)


def names(api: HostileApi) -> list[str]:
    found: list[str] = []
    after: str | None = f"{BASE}/policies"
    while after:
        page = api.upstream("GET", after)
        found += [p["attributes"]["name"] for p in page["data"]]
        nxt = page["links"]["next"]
        after = nxt[len(api.url) :] if nxt else None
    return found


def duplicate_count(api: HostileApi) -> int:
    found = names(api)
    return len(found) - len(set(found))


# ------------------------------------------------------------------ behaviours


@dataclass
class Case:
    """One behaviour: `install` sets the server's rules; `bad_read` whether it is a read that
    must stop the org before any write."""

    name: str
    install: Callable[[HostileApi, Mark], None]
    bad_read: bool = True
    commands: tuple[str, ...] = ("plan", "apply")


@dataclass
class Mark:
    """Where in the server's request log the first hostile answer went out."""

    api: HostileApi
    first: int | None = None
    injected_duplicates: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fired(self) -> None:
        # Called inside HostileApi.answer, which has just logged the request.
        with self.lock:
            if self.first is None:
                self.first = len(self.api.requests) - 1

    def writes_after(self) -> int:
        if self.first is None:
            return 0
        return sum(r.is_write for r in self.api.requests[self.first + 1 :])


def upstream_of(api: HostileApi, request: Request) -> tuple[int, bytes]:
    """The well-behaved answer to `request` (called while HostileApi holds its lock)."""
    assert api.upstream_client is not None
    target = request.path + ("?" + urlencode(request.query) if request.query else "")
    response = api.upstream_client.request(
        request.method,
        target,
        content=request.body or None,
        headers={"Content-Type": "application/json"} if request.body else {},
    )
    return response.status_code, response.content


def mutate(
    method: str, path: str, change: Callable[[Any], Any], *, only_if_items: bool = False
) -> Callable[[HostileApi, Mark], None]:
    """Answer with the upstream's JSON passed through `change` (which may edit in place)."""

    def install(api: HostileApi, mark: Mark) -> None:
        def reply(request: Request) -> Answer | None:
            status, content = upstream_of(api, request)
            body = json.loads(content)
            if only_if_items and not body.get("data"):
                return Answer(status, content, {"Content-Type": "application/json"})
            mark.fired()
            changed = change(copy.deepcopy(body))
            data = changed if isinstance(changed, bytes) else json.dumps(changed).encode()
            return Answer(status, data, {"Content-Type": "application/json"})

        api.on(method, path, reply)

    return install


def fixed(
    method: str, path: str, answer: Answer, times: int | None = None
) -> Callable[[HostileApi, Mark], None]:
    def install(api: HostileApi, mark: Mark) -> None:
        def reply(_request: Request) -> Answer:
            mark.fired()
            return answer

        api.on(method, path, reply, times=times)

    return install


def each_item(change: Callable[[dict[str, Any]], None]) -> Callable[[Any], Any]:
    def apply(body: Any) -> Any:
        for item in body["data"]:
            change(item)
        return body

    return apply


def setter(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set the dotted `path` of an item to `value`."""

    def change(item: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = item
        for part in parents:
            target = target[part]
        target[last] = value

    return change


def body_with(value: Any) -> Callable[[Any], Any]:
    return lambda body: value


def drop_key(key: str) -> Callable[[Any], Any]:
    def change(body: Any) -> Any:
        body.pop(key, None)
        return body

    return change


def huge_number(body: Any) -> bytes:
    """The first address of every list replaced by a 5,000-digit integer (raw JSON)."""
    for item in body["data"]:
        item["attributes"]["rule"]["in"][0] = "@HUGE@"
    return json.dumps(body).encode().replace(b'"@HUGE@"', b"9" * 5000)


def endless_fresh(api: HostileApi, mark: Mark) -> None:
    """Every page of policies brings a new disabled allowlist and a new cursor, forever."""

    def reply(request: Request) -> Answer:
        mark.fired()
        n = int(request.query.get("cursor", "0"))
        item = {
            "id": f"ghost-{n}",
            "type": "policy",
            "attributes": {
                "type": "ip-allowlist",
                "name": f"Ghost {n}",
                "status": "disabled",
                "rule": {"in": ["1.2.3.4/32"], "allowMobileBypass": False},
                "resources": [],
            },
        }
        nxt = f"{api.url}{request.path}?cursor={n + 1}"
        return Answer(body={"data": [item], "links": {"next": nxt}, "meta": {"next": str(n + 1)}})

    api.on("GET", POLICIES, reply)


def endless_same(api: HostileApi, mark: Mark) -> None:
    """The domains listing's next cursor is always fresh, its items always the same."""

    def reply(request: Request) -> Answer:
        status, content = upstream_of(api, Request("GET", request.path, {}, b""))
        mark.fired()
        body = json.loads(content)
        n = int(request.query.get("cursor", "0"))
        body["links"]["next"] = f"{api.url}{request.path}?cursor={n + 1}"
        body["meta"]["next"] = str(n + 1)
        return Answer(status, body)

    api.on("GET", DOMAINS, reply)


def trickle(seconds: float) -> Iterator[bytes]:
    """A valid-looking answer one byte at a time, a byte every `seconds`, for up to a minute."""
    yield b'{"data": ['
    for _ in range(int(60 / seconds)):
        time.sleep(seconds)
        yield b" "


def endless_body() -> Iterator[bytes]:
    """A body with no length that never ends (up to 64 MiB)."""
    yield b'{"data": [], "pad": "'
    chunk = b"x" * MIB
    for _ in range(64):
        yield chunk


def gzip_bomb() -> bytes:
    return gzip.compress(b'{"data": [], "pad": "' + b"x" * (40 * MIB) + b'"}', compresslevel=9)


def streaming(chunks: Callable[[], Iterator[bytes]]) -> Callable[[HostileApi, Mark], None]:
    """Answer policy listings 200 with `chunks()` and no length."""

    def install(api: HostileApi, mark: Mark) -> None:
        def reply(_request: Request) -> Answer:
            mark.fired()
            return Answer(200, stream=chunks())

        api.on("GET", POLICIES, reply)

    return install


def landed_then(
    status: int,
    method: str,
    path: str,
    *,
    times: int | None = None,
    retry_after: str | None = None,
) -> Callable[[HostileApi, Mark], None]:
    """Do the write upstream, then answer `status` (a gateway failure after the origin
    committed): the write landed, the answer says it did not."""

    def install(api: HostileApi, mark: Mark) -> None:
        def reply(request: Request) -> Answer:
            upstream_of(api, request)
            mark.fired()
            headers = {} if retry_after is None else {"Retry-After": retry_after}
            return Answer(status, {"message": "gateway"}, headers)

        api.on(method, path, reply, times=times)

    return install


def landed_then_cut(method: str, path: str) -> Callable[[HostileApi, Mark], None]:
    """Do the write upstream, then cut the answer mid-body (Content-Length never reached)."""

    def install(api: HostileApi, mark: Mark) -> None:
        def reply(request: Request) -> Answer:
            status, content = upstream_of(api, request)
            mark.fired()
            head = {"Content-Type": "application/json", "Content-Length": str(len(content) + 100)}
            return Answer(status, headers=head, stream=[content[: len(content) // 2]])

        api.on(method, path, reply, times=1)

    return install


def colleague_creates(name: str, *, duplicate: bool) -> Callable[[HostileApi, Mark], None]:
    """At apply's first write, a colleague creates an allowlist called `name`: the name the
    plan is about to create, or (`duplicate`) one that already exists."""

    def install(api: HostileApi, mark: Mark) -> None:
        def reply(request: Request) -> None:
            if not request.is_write or mark.first is not None:
                return
            mark.fired()
            create_upstream(api, name)
            mark.injected_duplicates += duplicate
            return  # the write itself goes on upstream

        for method in ("POST", "PUT", "PATCH", "DELETE"):
            api.on(method, r".", reply)

    return install


def create_upstream(api: HostileApi, name: str) -> None:
    """A colleague creates allowlist `name` (admitting MUST_ALLOW) in Atlassian Administration."""
    assert api.upstream_client is not None
    search = api.upstream_client.request("POST", f"/admin/v2/orgs/{ORG}/workspaces", json={})
    by_type: dict[str, list[str]] = {}
    for w in search.json()["data"]:
        by_type.setdefault(w["attributes"]["typeKey"], []).append(w["id"])
    body = policy_body(name, ["jira-software"], ["52.14.0.0/16"], by_type)
    api.upstream_client.request("POST", f"{BASE}/policies", json=body).raise_for_status()


def between(name: str, *, duplicate: bool) -> Callable[[HostileApi, Mark], None]:
    """After `plan --out`, before `apply --plan`: a colleague creates allowlist `name`."""

    def install(api: HostileApi, mark: Mark) -> None:
        mark.fired()
        with api._lock:  # as HostileApi.answer holds it around upstream calls
            create_upstream(api, name)
        mark.injected_duplicates += duplicate

    return install


def everywhere(answer: Answer, times: int | None = None) -> Callable[[HostileApi, Mark], None]:
    """Every request, reads and writes, gets `answer` (the first `times` requests only)."""

    def install(api: HostileApi, mark: Mark) -> None:
        left = [times]

        def reply(_request: Request) -> Answer | None:
            if left[0] is not None:
                if left[0] <= 0:
                    return None
                left[0] -= 1
            mark.fired()
            return answer

        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            api.on(method, r".", reply)

    return install


STORM = Answer(429, {"message": "rate limited"}, {"Retry-After": "1"})
LONG_STORM = Answer(429, {"message": "rate limited"}, {"Retry-After": "86400"})


def catalogue() -> list[Case]:
    cases = [Case("none (well-behaved server)", lambda api, mark: None, bad_read=False)]
    listings = {"policies": POLICIES, "workspaces": WORKSPACES, "domains": DOMAINS}
    for label, path in listings.items():
        method = "POST" if label == "workspaces" else "GET"
        cases += [
            Case(f"{label}: data missing", mutate(method, path, drop_key("data"))),
            Case(f"{label}: data null", mutate(method, path, setter("data", None))),
            Case(f"{label}: data a string", mutate(method, path, setter("data", "oops"))),
            Case(f"{label}: data an object", mutate(method, path, setter("data", {}))),
            Case(f"{label}: items not objects", mutate(method, path, setter("data", [1, "x"]))),
            Case(
                f"{label}: item without attributes",
                mutate(method, path, each_item(lambda i: i.pop("attributes"))),
            ),
            Case(
                f"{label}: attributes a list",
                mutate(method, path, each_item(setter("attributes", []))),
            ),
            Case(f"{label}: links a string", mutate(method, path, setter("links", "next"))),
            Case(
                f"{label}: HTML 200",
                fixed(
                    method,
                    path,
                    Answer(200, b"<html>Sign in</html>", {"Content-Type": "text/html"}),
                ),
            ),
            Case(
                f"{label}: 302 with JSON",
                fixed(
                    method,
                    path,
                    Answer(302, {"data": [], "links": {"next": None}}, {"Location": "/elsewhere"}),
                ),
            ),
        ]
    cases += [
        Case(
            "policies: rule.in a string",
            mutate("GET", POLICIES, each_item(setter("attributes.rule.in", "52.14.0.0/16"))),
        ),
        Case(
            'policies: allowMobileBypass "false"',
            mutate(
                "GET", POLICIES, each_item(setter("attributes.rule.allowMobileBypass", "false"))
            ),
        ),
        Case(
            'policies: status "false"',
            mutate("GET", POLICIES, each_item(setter("attributes.status", "false"))),
        ),
        Case(
            "policies: status true",
            mutate("GET", POLICIES, each_item(setter("attributes.status", True))),
        ),
        Case(
            "policies: name a number",
            mutate("GET", POLICIES, each_item(setter("attributes.name", 7))),
        ),
        Case(
            "policies: resources a string",
            mutate("GET", POLICIES, each_item(setter("attributes.resources", "all"))),
        ),
        Case("policies: 5,000-digit address", mutate("GET", POLICIES, huge_number)),
        Case(
            "workspaces: typeKey null",
            mutate("POST", WORKSPACES, each_item(setter("attributes.typeKey", None))),
        ),
        Case(
            "domains: pattern a number",
            mutate("GET", DOMAINS, each_item(setter("attributes.pattern", 42))),
        ),
        Case("settings: data missing", mutate("GET", SETTINGS, drop_key("data"))),
        Case("settings: data null", mutate("GET", SETTINGS, setter("data", None))),
        Case("settings: data a string", mutate("GET", SETTINGS, setter("data", "oops"))),
        Case("settings: data a list", mutate("GET", SETTINGS, setter("data", []))),
        Case(
            "settings: attributes missing",
            mutate("GET", SETTINGS, lambda b: b["data"].pop("attributes") and b),
        ),
        Case(
            'settings: allowAtlassianSupportedDomains "false"',
            mutate(
                "GET",
                SETTINGS,
                lambda b: (
                    b["data"]["attributes"].update(allowAtlassianSupportedDomains="false") or b
                ),
            ),
        ),
        Case(
            'settings: apiToken "false"',
            mutate(
                "GET",
                SETTINGS,
                lambda b: b["data"]["attributes"]["authentication"].update(apiToken="false") or b,
            ),
        ),
        Case(
            "settings: 301 with JSON",
            fixed("GET", SETTINGS, Answer(301, {"data": {}}, {"Location": "/elsewhere"})),
        ),
        Case(
            "policies: invalid JSON",
            fixed(
                "GET", POLICIES, Answer(200, b'{"data": [', {"Content-Type": "application/json"})
            ),
        ),
        Case("policies: empty 200", fixed("GET", POLICIES, Answer(200, b""))),
        Case(
            "policies: huge body (25 MiB, with length)",
            fixed(
                "GET",
                POLICIES,
                Answer(
                    200,
                    b'{"data": [], "pad": "' + b"x" * (25 * MIB) + b'"}',
                    {"Content-Type": "application/json"},
                ),
            ),
        ),
        Case(
            "policies: endless body (no length)",
            streaming(endless_body),
        ),
        Case(
            "policies: gzip bomb (40 MiB)",
            fixed(
                "GET",
                POLICIES,
                Answer(
                    200,
                    gzip_bomb(),
                    {"Content-Type": "application/json", "Content-Encoding": "gzip"},
                ),
            ),
        ),
        Case("policies: endless cursor, new items", endless_fresh),
        Case("domains: endless cursor, same items", endless_same),
        Case(
            "policies: trickle a byte every 0.5 s",
            streaming(lambda: trickle(0.5)),
        ),
        Case(
            "settings: headers after 10 s",
            fixed("GET", SETTINGS, Answer(200, {"data": {}}, delay=10)),
        ),
        Case("everything: 429 storm, Retry-After 1", everywhere(STORM), bad_read=False),
        Case("everything: 429, Retry-After 86400", everywhere(LONG_STORM), bad_read=False),
        Case("everything: 6 x 429 then fine", everywhere(STORM, times=6), bad_read=False),
        Case(
            "POST policy: 429 storm on writes",
            fixed("POST", POLICIES, STORM),
            bad_read=False,
            commands=("apply",),
        ),
        Case(
            "POST policy: landed, then 503",
            landed_then(503, "POST", POLICIES, retry_after="0"),
            bad_read=False,
            commands=("apply",),
        ),
        Case(
            "POST policy: landed, then 429",
            landed_then(429, "POST", POLICIES, retry_after="0"),
            bad_read=False,
            commands=("apply",),
        ),
        Case(
            "POST policy: landed, then 500",
            landed_then(500, "POST", POLICIES),
            bad_read=False,
            commands=("apply",),
        ),
        Case(
            "GET policy by id (after a write): data null",
            mutate("GET", POLICY, setter("data", None)),
            commands=("apply",),
        ),
        Case(
            "POST policy: landed, answer data null",
            mutate("POST", POLICIES, setter("data", None)),
            bad_read=False,
            commands=("apply",),
        ),
        Case(
            "POST policy: landed, answer cut",
            landed_then_cut("POST", POLICIES),
            bad_read=False,
            commands=("apply",),
        ),
        Case(
            "PUT policy: landed, then 503 (once)",
            landed_then(503, "PUT", POLICY, times=1, retry_after="0"),
            bad_read=False,
            commands=("apply",),
        ),
        Case(
            "DELETE policy: landed, then 502 (once)",
            landed_then(502, "DELETE", POLICY, times=1),
            bad_read=False,
            commands=("apply",),
        ),
        Case(
            "PATCH settings: landed, then 503 (once)",
            landed_then(503, "PATCH", SETTINGS, times=1, retry_after="0"),
            bad_read=False,
            commands=("apply",),
        ),
        Case(
            "POST domain: landed, then 503",
            landed_then(503, "POST", DOMAINS, retry_after="0"),
            bad_read=False,
            commands=("apply",),
        ),
        Case(
            "DELETE domain: landed, then 504 (once)",
            landed_then(504, "DELETE", DOMAIN, times=1),
            bad_read=False,
            commands=("apply",),
        ),
        Case(
            "dup name: 'Lab' created at apply's 1st write",
            colleague_creates("Lab", duplicate=False),
            bad_read=False,
            commands=("apply",),
        ),
        Case(
            "dup name: 2nd 'Office' at apply's 1st write",
            colleague_creates("Office", duplicate=True),
            bad_read=False,
            commands=("apply",),
        ),
        Case(
            "dup name: 'Lab' created between plan and apply",
            between("Lab", duplicate=False),
            bad_read=False,
            commands=("plan+apply --plan",),
        ),
        Case(
            "dup name: 2nd 'Office' between plan and apply",
            between("Office", duplicate=True),
            bad_read=False,
            commands=("plan+apply --plan",),
        ),
    ]
    return cases


# ------------------------------------------------------------------ running


@dataclass
class Row:
    behaviour: str
    command: str
    exit_code: str
    seconds: float
    writes_after_bad_read: int | None
    duplicates: int
    internal_errors: int
    hung: int
    output: str


def run_cli(args: list[str], tmp: Path, deadline: float) -> tuple[str, float, str, bool]:
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "rovo_reconcile", *args],
        cwd=tmp,
        env=ENV,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        out, _ = process.communicate(timeout=deadline)
        hung = False
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
        hung = True
    seconds = time.monotonic() - started
    code = "killed" if hung else str(process.returncode)
    return code, seconds, out.decode("utf-8", errors="replace"), hung


def run_case(case: Case, command: str, args: argparse.Namespace) -> Row:
    with tempfile.TemporaryDirectory(prefix="rovo-hostile-") as name:
        tmp = Path(name)
        policy = tmp / "policy.yaml"
        policy.write_text(POLICY_YAML, encoding="utf-8")
        with hostile_api(tmp) as api:
            seed(api)
            mark = Mark(api)
            base = [
                "--api-url",
                api.url,
                "--timeout",
                str(args.timeout),
                "--now",
                "2026-11-26",
            ]
            apply = ["apply", str(policy), "--yes", "--force", "--journal", str(tmp / "j.jsonl")]
            seconds = 0.0
            hung = False
            outputs = []
            if command == "plan+apply --plan":
                plan_json = tmp / "plan.json"
                code, spent, out, stuck = run_cli(
                    ["plan", str(policy), "--force", "--out", str(plan_json), *base],
                    tmp,
                    args.deadline,
                )
                seconds, hung, outputs = spent, stuck, [out]
                # Between plan and apply, a colleague makes the duplicate.
                case.install(api, mark)
                command_args = [
                    "apply",
                    "--plan",
                    str(plan_json),
                    "--yes",
                    "--force",
                    "--journal",
                    str(tmp / "j.jsonl"),
                    *base,
                ]
            else:
                case.install(api, mark)
                command_args = (
                    apply if command == "apply" else ["plan", str(policy), "--force"]
                ) + base
            code, spent, out, stuck = run_cli(command_args, tmp, args.deadline)
            seconds += spent
            hung |= stuck
            outputs.append(out)
            # Duplicates the behaviour made itself (a colleague's 2nd Office) are not counted.
            dups = duplicate_count(api) - mark.injected_duplicates
            if command.startswith("plan") and command != "plan+apply --plan":
                writes: int | None = len(api.writes())
            elif case.bad_read:
                writes = mark.writes_after()
            else:
                writes = None
        text = "\n".join(outputs)
        lowered = text.lower()
        internal = int("traceback" in lowered or "internal error" in lowered)
        behaviour = case.name
        if mark.first is None and case.name != "none (well-behaved server)":
            behaviour += " (never triggered)"  # the bench's fault, not the tool's
        return Row(behaviour, command, code, seconds, writes, dups, internal, int(hung), text)


def summary_row(label: str, rows: list[Row]) -> tuple[str, ...]:
    """A group of runs in one line: how many, their exit codes, the slowest, the sums."""
    exits = sorted({r.exit_code for r in rows}, key=lambda code: (not code.isdigit(), code))
    return (
        label,
        str(len(rows)),
        ",".join(exits),
        f"{max(r.seconds for r in rows):.1f}",
        str(sum(r.writes_after_bad_read or 0 for r in rows)),
        str(sum(r.duplicates for r in rows)),
        str(sum(r.internal_errors for r in rows)),
        str(sum(r.hung for r in rows)),
    )


def print_table(header: tuple[str, ...], table: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timeout", type=float, default=2.0, help="the CLI's --timeout")
    parser.add_argument(
        "--deadline", type=float, default=40.0, help="seconds a command may run in all"
    )
    parser.add_argument("--jobs", type=int, default=3, help="cases run at once")
    parser.add_argument("--only", default="", help="run the behaviours containing this")
    parser.add_argument("--verbose", action="store_true", help="print each command's output")
    args = parser.parse_args()
    started = time.monotonic()
    work = [
        (case, command)
        for case in catalogue()
        if args.only.lower() in case.name.lower()
        for command in case.commands
    ]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(lambda w: run_case(w[0], w[1], args), work))
    elapsed = time.monotonic() - started
    if args.verbose:
        for row in rows:
            print(f"===== {row.behaviour} / {row.command}: exit {row.exit_code}\n{row.output}")
    behaviours = len({row.behaviour for row in rows})
    print(
        f"hostile bench: {behaviours} behaviours, {len(rows)} runs, --timeout {args.timeout} s, "
        f"deadline {args.deadline:.0f} s, {args.jobs} at once; {elapsed:.1f} s"
    )
    header = (
        "behaviour",
        "command",
        "exit",
        "seconds",
        "writes after bad read",
        "duplicates",
        "internal errors",
        "hung",
    )
    table: list[tuple[str, ...]] = [
        (
            r.behaviour,
            r.command,
            r.exit_code,
            f"{r.seconds:.1f}",
            "-" if r.writes_after_bad_read is None else str(r.writes_after_bad_read),
            str(r.duplicates),
            str(r.internal_errors),
            str(r.hung),
        )
        for r in rows
    ]
    label, runs, exits, slowest, *sums = summary_row("total", rows)
    table.append((label, f"{runs} runs", exits, f"max {slowest}", *sums))
    print_table(header, table)
    print("\nby endpoint:")
    groups: dict[str, list[Row]] = {}
    for r in rows:
        groups.setdefault(r.behaviour.split(":")[0], []).append(r)
    summary_header = ("endpoint", "runs", "exits", "max seconds", *header[4:])
    print_table(summary_header, [summary_row(name, group) for name, group in groups.items()])
    bad = [
        r for r in rows if r.writes_after_bad_read or r.duplicates or r.internal_errors or r.hung
    ]
    for r in bad:
        print(f"MUST BE ZERO: {r.behaviour} / {r.command}: exit {r.exit_code}; last lines:")
        print("    " + "\n    ".join(r.output.strip().splitlines()[-4:]))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
