"""`rovo-reconcile emulator serve`: the emulator on a real loopback socket.

Only click, the standard library and `targets` (for the sandbox's file name) are
imported at module level, so the main CLI can register this group without loading
starlette or uvicorn for `--help`.

Without `--state` it serves the sandbox target's file (`.rovo-reconcile/sandbox.db`),
so a change made through it, as a colleague would make it in Atlassian
Administration, lands in the very org `plan`, `drift` and `show` read.

The command binds the socket itself, so that with `--port 0` it knows the port
the kernel picked and can announce it in one line on stdout once the server
accepts requests - tests and scripts read that line to find the server. SIGTERM
and SIGINT shut it down gracefully with exit status 0. API keys are never
printed or logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Literal

import click

from rovo_reconcile.targets import SANDBOX_DB

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["DEFAULT_STATE", "emulator", "parse_api_key"]

DEFAULT_STATE: Path = SANDBOX_DB
"""The sandbox target's file: the emulator and the other commands share one org by default."""
READY_LINE = "rovo-reconcile emulator listening on {url} (state {state})"
_HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def parse_api_key(text: str) -> tuple[str, Literal["read", "write"]]:
    """`KEY`, `KEY:write` or `KEY:read` -> (key, role); no suffix means write."""
    key, sep, role = text.rpartition(":")
    if sep and role == "read":
        result: tuple[str, Literal["read", "write"]] = (key, "read")
    elif sep and role == "write":
        result = (key, "write")
    else:
        result = (text, "write")
    if not result[0]:
        raise click.BadParameter("an API key must not be empty", param_hint="--api-key")
    return result


@click.group()
def emulator() -> None:
    """A local emulator of the Atlassian Admin API (for tests, demos and CI).

    The IP-allowlist endpoints follow Atlassian's Admin Control API shapes. The
    Rovo MCP endpoints (.../rovo-mcp/settings and .../rovo-mcp/domains) are
    rovo-reconcile's OWN contract, not an Atlassian API: Atlassian publishes no
    admin API for the Rovo MCP server settings.
    """


@emulator.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port to listen on; 0 picks a free port (the ready line on stdout names it).",
)
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_STATE,
    show_default=True,
    help="SQLite file holding the emulated organizations (created if missing; several "
    "emulators may share one file); the default is the sandbox target's file, so changes made "
    "here are what plan, drift and show see.",
)
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    metavar="KEY[:read|:write]",
    envvar="ROVO_RECONCILE_EMULATOR_API_KEYS",
    show_envvar=True,
    help="Require 'Authorization: Bearer KEY'. Repeatable; no suffix means write. A read key "
    "may only GET and search workspaces. Without any key, no authentication is enforced. "
    "The environment variable (keys separated by spaces) keeps keys out of the process list.",
)
@click.option(
    "--latency-ms",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Delay every API request by this much.",
)
@click.option(
    "--fail-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Probability that a request fails with 503 and Retry-After.",
)
@click.option(
    "--drop-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Probability that a write is applied but its connection is cut mid-response.",
)
@click.option(
    "--rate-limit",
    type=click.IntRange(min=1),
    default=None,
    help="Requests per second over all keys; more get 429 with Retry-After.",
)
@click.option(
    "--settle-ms",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    help="How long a policy write stays 'applying' before it settles.",
)
@click.option(
    "--page-size",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Items per page of every listing (small, so clients must paginate).",
)
@click.option(
    "--retry-after",
    "retry_after_s",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Seconds sent in Retry-After on 429 and 503.",
)
@click.option(
    "--apply-fail-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Probability that a policy write settles to applicationStatus 'failed'.",
)
@click.option(
    "--org",
    "orgs",
    multiple=True,
    metavar="ID",
    help="Create this organization at start-up. Repeatable.",
)
@click.option(
    "--strict-orgs",
    is_flag=True,
    help="Answer 404 for unknown organizations instead of creating them on first use.",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Seed for the fault dice, so a faulty run repeats exactly.",
)
def serve(
    host: str,
    port: int,
    state: Path,
    api_keys: tuple[str, ...],
    latency_ms: int,
    fail_rate: float,
    drop_rate: float,
    rate_limit: int | None,
    settle_ms: int,
    page_size: int,
    retry_after_s: int,
    apply_fail_rate: float,
    orgs: tuple[str, ...],
    strict_orgs: bool,
    seed: int | None,
) -> int:
    """Serve the Admin API emulator over HTTP until SIGTERM or Ctrl-C.

    Policies follow Atlassian's Admin Control API; the Rovo MCP endpoints are
    rovo-reconcile's own contract, because Atlassian publishes no MCP admin API.

    Prints one line when ready: 'rovo-reconcile emulator listening on URL (state FILE)'.
    Besides the API it serves GET /_emulator/stats, GET /_emulator/writes (every
    write request, in order, with its status) and POST /_emulator/stats/reset:
    request counters and a log that are no part of any Atlassian API.
    """
    import time

    from rovo_reconcile.emulator.app import EmulatorOptions, create_app
    from rovo_reconcile.emulator.store import Store

    options = EmulatorOptions(
        page_size=page_size,
        settle_ms=settle_ms,
        latency_ms=latency_ms,
        fail_rate=fail_rate,
        drop_rate=drop_rate,
        rate_limit=rate_limit,
        retry_after_s=retry_after_s,
        apply_fail_rate=apply_fail_rate,
        api_keys=dict(parse_api_key(k) for k in api_keys),
        auto_create_orgs=not strict_orgs,
        seed=seed,
    )
    sock = _bind(host, port)  # first, so a busy port fails fast and touches no file
    try:
        store = Store(state)
        for org in orgs:
            store.ensure_org(org, time.time_ns() // 1_000_000)
        store.close()
        app = create_app(state, options)
        actual_port = sock.getsockname()[1]
        url = f"http://{f'[{host}]' if ':' in host else host}:{actual_port}"
        _run(app, host, sock, READY_LINE.format(url=url, state=state))
    finally:
        sock.close()
    return 0


def _bind(host: str, port: int) -> socket.socket:
    from rovo_reconcile.errors import RovoError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise RovoError(f"cannot listen on {host}:{port}: {e}") from e
    try:
        if os.name == "posix":  # rebind at once after a restart; on Windows it means "share"
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise RovoError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    return sock


def _run(app: Starlette, host: str, sock: socket.socket, ready_line: str) -> None:
    import uvicorn

    from rovo_reconcile.emulator.middleware import DroppedConnection

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                click.echo(ready_line)
                sys.stdout.flush()

        # uvicorn's own main loop looks at `should_exit` every 0.1 s; tests start and
        # stop an emulator over a hundred times, so a signal wakes this one at once.
        async def main_loop(self) -> None:
            loop = asyncio.get_running_loop()
            woken = asyncio.Event()
            self._wake = lambda: loop.call_soon_threadsafe(woken.set)
            counter = 0
            should_exit = await self.on_tick(counter)
            while not should_exit:
                counter = (counter + 1) % 864000
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), 0.1)
                woken.clear()
                should_exit = await self.on_tick(counter)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            self.wake()

        def wake(self) -> None:
            wake = getattr(self, "_wake", None)
            if wake is not None:
                wake()

    config = uvicorn.Config(
        app,
        host=host,
        port=sock.getsockname()[1],
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    # A drop_rate fault is an exception by design; it is not worth a traceback on stderr.
    logging.getLogger("uvicorn.error").addFilter(
        lambda record: not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))
    )
    server = Server(config)

    # uvicorn handles SIGINT/SIGTERM while it runs and re-raises the signal afterwards
    # for the handler that was installed before it; with the defaults that would turn a
    # clean shutdown into death by signal. Ours just asks the server to stop, which also
    # covers a signal that arrives before uvicorn has installed its own handlers.
    def stop(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True
        server.wake()

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, stop) for sig in _HANDLED_SIGNALS if in_main_thread}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
