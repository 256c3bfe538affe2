"""The Admin API emulator as an ASGI app: `create_app(db_path, options)`.

It serves the shapes of DESIGN.md section 5 from a SQLite file (`store.Store`),
the same app whether it runs behind uvicorn on a socket (`emulator serve`) or
in-process behind `httpx.ASGITransport` (the `sandbox` target). Two groups of
endpoints, under `/admin/control/v1/orgs/{orgId}`:

- policies (IP allowlists): Atlassian's Admin Control API shapes, as verified
  in `reference/atlassian-admin-api.md`; writes answer 202 and settle from
  `applying` to `applied` (or `failed`) `settle_ms` after the write; a create or
  replace that would give a workspace more than 500 entries over the allowlists
  attached to it (disabled ones included, `app_limit`) answers 400 and writes
  nothing, as Atlassian documents "500 IP addresses or network blocks per product";
- `rovo-mcp/...`: **this project's own contract**. Atlassian publishes no API
  for the Rovo MCP server settings, so these endpoints are an invention of
  rovo-reconcile, not an emulation of anything Atlassian serves.

Plus the workspaces search `POST /admin/v2/orgs/{orgId}/workspaces` (reads
only), the organizations listing `GET /admin/v1/orgs` (every org in the state file,
each named `Org <first 8 characters of its id>`: the store keeps no names), and `/_emulator/stats` and `/_emulator/writes`, which are no Atlassian
API at all: a request counter and the log of every write request (method,
path, status) for tests and benchmarks, kept in the SQLite file so they add up
across processes.

Store calls run inline on the event loop. Each is one short SQLite statement
or transaction (about 0.2 ms) and no transaction spans an `await`, so nothing
can deadlock; a write may wait for another process's write lock, which is held
for well under a millisecond. Handing each call to a worker thread instead cost
more (about 0.8 ms a request) than the calls themselves.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rovo_reconcile.emulator.middleware import EmulatorMiddleware, Faults
from rovo_reconcile.emulator.responses import Problem, application_error, json_response
from rovo_reconcile.emulator.store import (
    DomainRecord,
    McpSettingsRecord,
    OverLimit,
    Page,
    PolicyRecord,
    Store,
    WorkspaceRecord,
)
from rovo_reconcile.emulator.validate import (
    bad_request,
    parse_domain,
    parse_json,
    parse_policy,
    parse_settings_patch,
)

__all__ = ["CONTROL_BASE", "EmulatorOptions", "create_app"]

CONTROL_BASE = "/admin/control/v1/orgs/{org_id}"
WORKSPACES = "/admin/v2/orgs/{org_id}/workspaces"
ORGS = "/admin/v1/orgs"

R = TypeVar("R")


@dataclass(frozen=True)
class EmulatorOptions:
    """How the emulator behaves. The defaults make a well-behaved, open server.

    `page_size` is small by default so that every client paginates. Rates are
    probabilities in [0, 1]; `seed` makes the fault dice repeatable.
    """

    page_size: int = 2
    settle_ms: int = 200
    latency_ms: int = 0
    fail_rate: float = 0.0
    drop_rate: float = 0.0
    rate_limit: int | None = None
    """Requests per second over all keys; None is unlimited."""
    retry_after_s: int = 1
    apply_fail_rate: float = 0.0
    """Probability that a policy write settles to applicationStatus "failed"."""
    api_keys: Mapping[str, Literal["read", "write"]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    """Bearer keys and what they may do; empty means no authentication at all."""
    auto_create_orgs: bool = True
    on_org_created: Callable[[str], None] | None = None
    """Told the id of each org created on first use (the sandbox says so on stderr)."""
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1")
        for name in ("settle_ms", "latency_ms", "retry_after_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        for name in ("fail_rate", "drop_rate", "apply_fail_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.rate_limit is not None and self.rate_limit < 1:
            raise ValueError("rate_limit must be at least 1 (or None)")
        if any(role not in ("read", "write") for role in self.api_keys.values()):
            raise ValueError("every API key's role must be 'read' or 'write'")
        # A private read-only copy: the caller's dict changing later must not change the server.
        object.__setattr__(self, "api_keys", MappingProxyType(dict(self.api_keys)))

    def __repr__(self) -> str:  # never show the keys, even in a traceback
        shown = {k: v for k, v in self.__dict__.items() if k != "api_keys"}
        shown["api_keys"] = f"<{len(self.api_keys)} keys>"
        return f"EmulatorOptions({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


def create_app(db_path: Path, options: EmulatorOptions | None = None) -> Starlette:
    """The emulator app on the SQLite file `db_path` (created, with its directory, if missing)."""
    options = options or EmulatorOptions()
    store = Store(db_path)
    faults = Faults(
        seed=options.seed,
        fail_rate=options.fail_rate,
        drop_rate=options.drop_rate,
        apply_fail_rate=options.apply_fail_rate,
    )
    api = _Api(store, options, faults)
    routes = [
        _route(ORGS, GET=api.list_orgs),
        _route(f"{ORGS}/{{org_id}}", GET=api.get_org),
        _route(WORKSPACES, POST=api.search_workspaces),
        _route(f"{CONTROL_BASE}/policies", GET=api.list_policies, POST=api.create_policy),
        _route(
            f"{CONTROL_BASE}/policies/{{policy_id}}",
            GET=api.get_policy,
            PUT=api.replace_policy,
            DELETE=api.delete_policy,
        ),
        _route(f"{CONTROL_BASE}/rovo-mcp/settings", GET=api.get_settings, PATCH=api.patch_settings),
        _route(f"{CONTROL_BASE}/rovo-mcp/domains", GET=api.list_domains, POST=api.add_domain),
        _route(f"{CONTROL_BASE}/rovo-mcp/domains/{{domain_id}}", DELETE=api.delete_domain),
        _route("/_emulator/stats", GET=api.stats),
        _route("/_emulator/stats/reset", POST=api.reset_stats),
        _route("/_emulator/writes", GET=api.writes),
    ]
    middleware = [
        Middleware(
            EmulatorMiddleware,
            store=store,
            faults=faults,
            api_keys=options.api_keys,
            latency_ms=options.latency_ms,
            rate_limit=options.rate_limit,
            retry_after_s=options.retry_after_s,
        )
    ]
    handlers: dict[Any, Any] = {
        Problem: _problem_response,
        HTTPException: _http_exception_response,
        Exception: _internal_error_response,
    }
    return Starlette(routes=routes, middleware=middleware, exception_handlers=handlers)


Endpoint = Callable[[Request], Awaitable[Response]]


def _route(path: str, **by_method: Endpoint) -> Route:
    """One route per path, so a 405 names every method the path supports in `Allow`."""

    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await by_method[method](request)

    return Route(path, dispatch, methods=list(by_method))


# --------------------------------------------------------------------------- errors


async def _problem_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return application_error(exc.status, exc.code, exc.title, exc.detail, exc.headers)


async def _http_exception_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    where = f"{request.method} {request.url.path}"
    if exc.status_code == 404:
        return application_error(404, "ADMIN-404-1", "Not found", f"no such endpoint: {where}")
    if exc.status_code == 405:
        return application_error(
            405,
            "ADMIN-405-1",
            "Method not supported",
            f"{where} is not supported",
            exc.headers,
        )
    return application_error(exc.status_code, f"ADMIN-{exc.status_code}-1", exc.detail, where)


async def _internal_error_response(request: Request, exc: Exception) -> Response:
    return application_error(
        500, "ADMIN-500-1", "Internal error", f"the emulator failed: {type(exc).__name__}"
    )


# --------------------------------------------------------------------------- pagination


def _encode_cursor(after: int) -> str:
    return base64.urlsafe_b64encode(f"after:{after}".encode()).decode().rstrip("=")


def _decode_cursor(request: Request) -> int | None:
    cursor = request.query_params.get("cursor")
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        label, _, number = text.partition(":")
        if label != "after" or not number.isdigit():
            raise ValueError(text)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError) as e:
        raise Problem(
            400, "ADMIN-400-1", "Invalid page cursor", f"{cursor!r} is not a cursor this API issued"
        ) from e


def _page_body(
    request: Request, data: list[dict[str, Any]], after: int | None, page_size: int
) -> dict[str, Any]:
    """Both `meta.next` (a cursor) and `links.next` (a URL), as Atlassian sends them."""
    cursor = _encode_cursor(after) if after is not None else None
    next_url = str(request.url.include_query_params(cursor=cursor)) if cursor else None
    return {
        "data": data,
        "meta": {"next": cursor, "page_size": page_size},
        "links": {"self": str(request.url), "next": next_url},
    }


# --------------------------------------------------------------------------- JSON shapes


def _org_json(request: Request, org_id: str) -> dict[str, Any]:
    """An `OrgModel` (reference/atlassian-admin-api.md 1.3); the emulator's names are made up."""
    return {
        "id": org_id,
        "type": "orgs",
        "attributes": {"name": f"Org {org_id[:8]}"},
        "links": {"self": f"{str(request.base_url).rstrip('/')}{ORGS}/{org_id}"},
    }


def _workspace_json(ws: WorkspaceRecord) -> dict[str, Any]:
    return {
        "id": ws.id,
        "type": "workspace",
        "attributes": {
            "name": ws.name,
            "typeKey": ws.type_key,
            "type": "product",
            "status": "online",
            "hostUrl": ws.host_url,
        },
    }


def _policy_json(policy: PolicyRecord, now_ms: int, settle_ms: int) -> dict[str, Any]:
    # Computed at read time from the write's timestamp: no background task to keep alive.
    settled = now_ms >= policy.written_at_ms + settle_ms
    status = policy.outcome if settled else "applying"
    fields = policy.fields
    return {
        "id": policy.id,
        "type": "policy",
        "attributes": {
            "type": fields.type,
            "name": fields.name,
            "status": fields.status,
            "rule": fields.rule,
            "resources": [{"id": rid, "applicationStatus": status} for rid in fields.resources],
            "createdAt": policy.created_at,
            "updatedAt": policy.updated_at,
        },
    }


def _settings_json(settings: McpSettingsRecord) -> dict[str, Any]:
    return {
        "data": {
            "type": "rovo-mcp-settings",
            "attributes": {
                "allowAtlassianSupportedDomains": settings.allow_supported,
                "authentication": {"oauth21": True, "apiToken": settings.api_token},
            },
        }
    }


def _domain_json(domain: DomainRecord) -> dict[str, Any]:
    return {"id": domain.id, "type": "rovo-mcp-domain", "attributes": {"pattern": domain.pattern}}


def _over_limit(error: OverLimit) -> Problem:
    """Atlassian answers 400 to an allowlist write past the limit of entries per product."""
    return bad_request(str(error))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# --------------------------------------------------------------------------- handlers


class _Api:
    def __init__(self, store: Store, options: EmulatorOptions, faults: Faults) -> None:
        self.store = store
        self.options = options
        self.faults = faults
        self._known_orgs: set[str] = set()

    async def _run(self, fn: Callable[[], R]) -> R:
        """The one place store calls go through, should they ever need a thread."""
        return fn()

    async def _org(self, request: Request) -> str:
        org_id: str = request.path_params["org_id"]
        if org_id in self._known_orgs:  # orgs are never deleted, so this cannot go stale
            return org_id
        if self.options.auto_create_orgs:
            created = await self._run(lambda: self.store.ensure_org(org_id, _now_ms()))
            if created and self.options.on_org_created is not None:
                self.options.on_org_created(org_id)
        elif not await self._run(lambda: self.store.org_exists(org_id)):
            raise Problem(
                404, "ADMIN-404-2", "Organization not found", f"there is no organization {org_id!r}"
            )
        self._known_orgs.add(org_id)
        return org_id

    async def _body(self, request: Request, *, required: bool = True) -> Any:
        return parse_json(await request.body(), required=required)

    # ------------------------------------------------------------------ organizations

    async def list_orgs(self, request: Request) -> Response:
        after = _decode_cursor(request)
        size = self.options.page_size
        page: Page[str] = await self._run(lambda: self.store.list_orgs(after, size))
        data = [_org_json(request, org_id) for org_id in page.items]
        return json_response(_page_body(request, data, page.after, size))

    async def get_org(self, request: Request) -> Response:
        org_id = await self._org(request)
        return json_response({"data": _org_json(request, org_id)})

    # ------------------------------------------------------------------ workspaces

    async def search_workspaces(self, request: Request) -> Response:
        org_id = await self._org(request)
        body = await self._body(request, required=False)
        if not isinstance(body, dict):
            raise bad_request("body: expected a JSON object (filters are accepted and ignored)")
        after = _decode_cursor(request)
        size = self.options.page_size
        page: Page[WorkspaceRecord] = await self._run(
            lambda: self.store.list_workspaces(org_id, after, size)
        )
        data = [_workspace_json(ws) for ws in page.items]
        return json_response(_page_body(request, data, page.after, size))

    # ------------------------------------------------------------------ policies

    def _policy_not_found(self, policy_id: str) -> Problem:
        return Problem(
            404,
            "ADMIN-404-5",
            "Policy not found",
            f"there is no policy {policy_id!r} in this organization",
        )

    async def list_policies(self, request: Request) -> Response:
        org_id = await self._org(request)
        after = _decode_cursor(request)
        policy_type = request.query_params.get("type") or None
        size = self.options.page_size
        page = await self._run(lambda: self.store.list_policies(org_id, policy_type, after, size))
        now = _now_ms()
        data = [_policy_json(p, now, self.options.settle_ms) for p in page.items]
        return json_response(_page_body(request, data, page.after, size))

    async def create_policy(self, request: Request) -> Response:
        org_id = await self._org(request)
        fields = parse_policy(await self._body(request))
        outcome = self.faults.apply_outcome()
        now = _now_ms()
        try:
            policy = await self._run(lambda: self.store.create_policy(org_id, fields, now, outcome))
        except OverLimit as e:
            raise _over_limit(e) from e
        return json_response({"data": _policy_json(policy, now, self.options.settle_ms)}, 202)

    async def get_policy(self, request: Request) -> Response:
        org_id = await self._org(request)
        policy_id: str = request.path_params["policy_id"]
        policy = await self._run(lambda: self.store.get_policy(org_id, policy_id))
        if policy is None:
            raise self._policy_not_found(policy_id)
        return json_response({"data": _policy_json(policy, _now_ms(), self.options.settle_ms)})

    async def replace_policy(self, request: Request) -> Response:
        org_id = await self._org(request)
        policy_id: str = request.path_params["policy_id"]
        fields = parse_policy(await self._body(request), path_id=policy_id)
        outcome = self.faults.apply_outcome()
        now = _now_ms()
        try:
            policy = await self._run(
                lambda: self.store.replace_policy(org_id, policy_id, fields, now, outcome)
            )
        except OverLimit as e:
            raise _over_limit(e) from e
        if policy is None:
            raise self._policy_not_found(policy_id)
        return json_response({"data": _policy_json(policy, now, self.options.settle_ms)}, 202)

    async def delete_policy(self, request: Request) -> Response:
        org_id = await self._org(request)
        policy_id: str = request.path_params["policy_id"]
        if not await self._run(lambda: self.store.delete_policy(org_id, policy_id)):
            raise self._policy_not_found(policy_id)
        return Response(status_code=202)

    # ------------------------------------------------------------------ MCP: our own contract

    async def get_settings(self, request: Request) -> Response:
        org_id = await self._org(request)
        settings = await self._run(lambda: self.store.get_mcp_settings(org_id))
        return json_response(_settings_json(settings))

    async def patch_settings(self, request: Request) -> Response:
        org_id = await self._org(request)
        allow, api_token = parse_settings_patch(await self._body(request))
        settings = await self._run(
            lambda: self.store.update_mcp_settings(
                org_id, allow_supported=allow, api_token=api_token
            )
        )
        return json_response(_settings_json(settings))

    async def list_domains(self, request: Request) -> Response:
        org_id = await self._org(request)
        after = _decode_cursor(request)
        size = self.options.page_size
        page = await self._run(lambda: self.store.list_domains(org_id, after, size))
        data = [_domain_json(d) for d in page.items]
        return json_response(_page_body(request, data, page.after, size))

    async def add_domain(self, request: Request) -> Response:
        org_id = await self._org(request)
        pattern, canonical = parse_domain(await self._body(request))
        domain = await self._run(lambda: self.store.add_domain(org_id, pattern, canonical))
        if domain is None:
            raise Problem(
                409,
                "ADMIN-409-1",
                "Domain already exists",
                f"{pattern!r} is already allowed (as {canonical!r} after normalisation)",
            )
        return json_response({"data": _domain_json(domain)}, 201)

    async def delete_domain(self, request: Request) -> Response:
        org_id = await self._org(request)
        domain_id: str = request.path_params["domain_id"]
        if not await self._run(lambda: self.store.delete_domain(org_id, domain_id)):
            raise Problem(
                404,
                "ADMIN-404-1",
                "Domain not found",
                f"there is no MCP domain {domain_id!r} in this organization",
            )
        return Response(status_code=204)

    # ------------------------------------------------------------------ not Atlassian: test hooks

    async def stats(self, request: Request) -> Response:
        return JSONResponse(await self._run(self.store.stats))

    async def writes(self, request: Request) -> Response:
        return JSONResponse({"writes": await self._run(self.store.write_log)})

    async def reset_stats(self, request: Request) -> Response:
        await self._run(self.store.reset_stats)
        return Response(status_code=204)
