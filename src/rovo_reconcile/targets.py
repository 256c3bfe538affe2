"""Where live state lives: the local sandbox or a real Atlassian organization.

Both are reached through the same `AdminClient`; the sandbox only swaps the
transport for the emulator app running in-process on a SQLite file, so the
sandbox exercises exactly the client code that talks to Atlassian.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rovo_reconcile.errors import UsageError

if TYPE_CHECKING:
    import ssl

    from rovo_reconcile.api.client import AdminClient
    from rovo_reconcile.api.retry import RetryPolicy
    from rovo_reconcile.api.secrets import Secret
    from rovo_reconcile.api.transport import CountingTransport

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_TIMEOUT",
    "SANDBOX_DB",
    "TARGETS",
    "Target",
    "open_client",
    "resolve_target",
]

TARGETS = ("sandbox", "atlassian")
DEFAULT_API_URL = "https://api.atlassian.com"
SANDBOX_DB = Path(".rovo-reconcile") / "sandbox.db"
SANDBOX_URL = "http://sandbox.rovo-reconcile.invalid"
API_KEY_ENV = "ATLASSIAN_ADMIN_API_KEY"
DEFAULT_TIMEOUT = 60.0
"""Seconds one request may take in all, answer included (`--timeout`, $ROVO_RECONCILE_TIMEOUT)."""
LOOPBACK_RULE = "plain http only to a loopback host (127.0.0.0/8, ::1, localhost)"


@dataclass(frozen=True)
class Target:
    name: Literal["sandbox", "atlassian"]
    api_url: str
    explicit: bool
    """True when the user chose the target (flag or environment), False for the default."""
    sandbox_db: Path | None = None
    api_key_file: Path | None = None
    timeout: float = DEFAULT_TIMEOUT
    """Seconds one request may take in all, from sending it to the last byte of the answer."""

    @property
    def label(self) -> str:
        """How every output names the target."""
        if self.name == "sandbox":
            return f"sandbox ({self.sandbox_db})"
        return f"atlassian ({self.api_url})"


def resolve_target(
    target: str | None,
    api_url: str | None,
    api_key_file: Path | None,
    sandbox_db: Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> Target:
    """Apply DESIGN.md section 4: flags first, then environment, then the sandbox default.

    An http:// API URL is refused unless its host is loopback: the request carries the API key.
    """
    env = os.environ if env is None else env
    chosen = target or env.get("ROVO_RECONCILE_TARGET") or None
    if chosen is None and api_url:
        chosen = "atlassian"  # --api-url only makes sense for an API
    explicit = chosen is not None
    name = chosen or "sandbox"
    if name == "sandbox":
        if api_url:
            raise UsageError("--api-url cannot be used with --target sandbox")
        return Target(
            "sandbox", SANDBOX_URL, explicit, sandbox_db=sandbox_db or SANDBOX_DB, timeout=timeout
        )
    if name != "atlassian":
        raise UsageError(f"unknown target {name!r}; choose one of: {', '.join(TARGETS)}")
    url = api_url or env.get("ROVO_RECONCILE_API_URL") or DEFAULT_API_URL
    if not url.startswith(("https://", "http://")):
        raise UsageError(
            f"--api-url {url!r} must start with https:// (or http:// for a local emulator)"
        )
    _refuse_key_in_clear(url, "--api-url" if api_url else "ROVO_RECONCILE_API_URL")
    return Target(
        "atlassian", url.rstrip("/"), explicit, api_key_file=api_key_file, timeout=timeout
    )


def _refuse_key_in_clear(url: str, source: str) -> None:
    """Every request carries the Admin API key: over http only to this machine, never beyond."""
    import ipaddress

    import httpx

    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as e:
        raise UsageError(f"{source}: {url!r} is not a valid URL ({e})") from None
    host = parsed.host
    if parsed.scheme != "http" or host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise UsageError(
        f"{source}: refusing http://{host}: the Admin API key would travel in clear; "
        f"{LOOPBACK_RULE}, as for an emulator on this machine. Use https://"
    )


def _certificate_checks(api_url: str) -> ssl.SSLContext | bool:
    """httpx's own checks for https; for plain http (only ever to this machine, as
    `_refuse_key_in_clear` holds), a TLS context that trusts no certificate at all.

    It is never used: requests go to the http base URL and redirects are not followed. Were
    one to reach an https URL, it would fail, never pass unchecked. Loading the CA bundle
    for a context nobody uses cost ~20 ms of each command against an emulator (issue 9).
    """
    if api_url.startswith("https://"):
        return True
    import ssl

    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _api_key(target: Target, env: Mapping[str, str]) -> Secret:
    from rovo_reconcile.api.secrets import Secret, api_key_problem

    if target.api_key_file is not None:
        try:
            value = _key_file_text(target.api_key_file)
        except OSError as e:
            raise UsageError(f"--api-key-file {target.api_key_file}: {e.strerror}") from e
        except UnicodeDecodeError:  # the codec's message would quote a byte of the key
            raise UsageError(
                f"--api-key-file {target.api_key_file}: not UTF-8 text (an API key is ASCII)"
            ) from None
    else:
        value = env.get(API_KEY_ENV, "").strip()
    if not value:
        raise UsageError(
            f"the atlassian target needs an Admin API key: set {API_KEY_ENV} or pass --api-key-file"
        )
    key = Secret(value)
    problem = api_key_problem(key)
    if problem is not None:
        where = f"--api-key-file {target.api_key_file}" if target.api_key_file else API_KEY_ENV
        raise UsageError(f"{where}: {problem}")
    return key


def _key_file_text(path: Path) -> str:
    """The key file's text; a pipe (`<(pass show ...)`) is read with a deadline, any other
    special file refused, so a FIFO nobody writes to cannot hang the run."""
    from rovo_reconcile.policy.files import read_pipe, special_kind

    kind = special_kind(path)
    if kind is None:
        return path.read_text("utf-8").strip()
    if kind.startswith("a named pipe"):
        data = read_pipe(path)
        if data is None:
            raise UsageError(f"--api-key-file {path}: a named pipe nothing was written to in 10 s")
        return data.decode("utf-8").strip()
    raise UsageError(f"--api-key-file {path}: this is {kind}, not a file holding a key")


def _sandbox_org_created(org_id: str) -> None:
    _to_stderr(
        f"sandbox: created org {org_id} with a sample workspace of each app "
        "(the sandbox makes every org it is asked about; check the id if you did not expect this)"
    )


def _to_stderr(message: str) -> None:
    """Progress goes to stderr; stdout carries only the result."""
    import sys

    print(f"rovo-reconcile: {message}", file=sys.stderr, flush=True)


def _retry_policy(env: Mapping[str, str]) -> RetryPolicy:
    """Retries as default, with the total wait per request from $ROVO_RECONCILE_RETRY_BUDGET."""
    from rovo_reconcile.api.retry import RetryPolicy

    text = env.get("ROVO_RECONCILE_RETRY_BUDGET", "").strip()
    if not text:
        return RetryPolicy()
    try:
        budget = float(text)
    except ValueError as e:
        raise UsageError(f"ROVO_RECONCILE_RETRY_BUDGET={text!r} is not a number of seconds") from e
    return RetryPolicy(budget=budget)


@asynccontextmanager
async def open_client(
    target: Target,
    *,
    read_only: bool,
    concurrency: int = 8,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[tuple[AdminClient, CountingTransport]]:
    """Yield (AdminClient, CountingTransport) for the target; closes everything after."""
    import httpx

    from rovo_reconcile.api.client import AdminClient, ReadLimits
    from rovo_reconcile.api.secrets import BearerAuth
    from rovo_reconcile.api.transport import (
        CountingTransport,
        DeadlineTransport,
        ReadOnlyTransport,
    )

    env = os.environ if env is None else env
    limits = ReadLimits.from_env(env)
    secret: Secret | None = None
    inner: httpx.AsyncBaseTransport
    if target.name == "sandbox":
        from rovo_reconcile.emulator import EmulatorOptions, create_app

        assert target.sandbox_db is not None
        app = create_app(
            target.sandbox_db,
            EmulatorOptions(settle_ms=0, page_size=50, on_org_created=_sandbox_org_created),
        )
        inner = httpx.ASGITransport(app=app)
    else:
        secret = _api_key(target, env)
        inner = httpx.AsyncHTTPTransport(
            verify=_certificate_checks(target.api_url),
            limits=httpx.Limits(max_connections=concurrency),
        )
    counter = CountingTransport(DeadlineTransport(inner, target.timeout))
    transport: httpx.AsyncBaseTransport = ReadOnlyTransport(counter) if read_only else counter
    http = httpx.AsyncClient(
        transport=transport,
        base_url=target.api_url,
        auth=BearerAuth(secret) if secret is not None else None,
        # httpx's per-phase timeouts sit above --timeout, which bounds each request in all
        # (DeadlineTransport): a stalled read ends at the deadline, not at a shorter read
        # timeout that the client would then retry.
        timeout=httpx.Timeout(
            connect=min(10.0, target.timeout),
            read=target.timeout + 5.0,
            write=target.timeout + 5.0,
            pool=max(60.0, target.timeout + 5.0),
        ),
        headers={"Accept": "application/json", "User-Agent": "rovo-reconcile"},
        follow_redirects=False,
    )
    client = AdminClient(
        http,
        concurrency=concurrency,
        retry=_retry_policy(env),
        secret=secret,
        log=_to_stderr,
        limits=limits,
    )
    try:
        yield client, counter
    finally:
        await client.aclose()
