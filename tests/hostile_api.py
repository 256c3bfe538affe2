"""A hostile Admin API for tests: any endpoint answers a chosen status, headers, body and timing.

A stdlib HTTP server on a loopback port, in a thread. Each request is logged, then matched
against the rules a test set with `on` (method and a regular expression searched in the
path); the first rule that matches answers. A request no rule claims goes to a well-behaved
upstream, the emulator app in-process on a SQLite file (open, settle 0, page size 50), so a
test breaks exactly one endpoint of an otherwise real organization:

    with hostile_api(tmp_path) as api:
        api.on("GET", r"/policies$", Answer(body={"data": "oops"}))
        cli("plan", str(policies), "--api-url", api.url, env={...})
        assert api.writes() == []

A rule's answer may be a function of the request (return None to pass it upstream), and
`times` limits how often a rule answers. A body is JSON-encoded unless it is bytes;
`stream` sends chunks with no length, for as long as the client reads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from starlette.applications import Starlette

from rovo_reconcile.emulator import EmulatorOptions, create_app

__all__ = ["Answer", "HostileApi", "Request", "hostile_api"]

WORKSPACE_SEARCH = re.compile(r"/admin/v2/orgs/[^/]+/workspaces$")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: bytes

    @property
    def is_write(self) -> bool:
        """What the read-only guard would refuse: anything but GET, HEAD and the search."""
        return self.method not in ("GET", "HEAD") and not (
            self.method == "POST" and WORKSPACE_SEARCH.search(self.path)
        )


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: Any = None
    """JSON-encoded unless bytes; None sends no body."""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering."""
    stream: Iterable[bytes] | None = None
    """Chunks sent after the headers with no Content-Length, then the connection closes."""


Reply = Answer | Callable[[Request], Answer | None]


@dataclass
class _Rule:
    method: str
    path: re.Pattern[str]
    reply: Reply
    times: int | None


class _Upstream:
    """The emulator app driven from a thread of its own, called synchronously."""

    def __init__(self, app: Starlette, base_url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._closing = False
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send through the emulator app on its own loop. The request's coroutine is made
        inside that loop, so a loop that stops first (a handler thread outliving its test)
        leaves no coroutine unawaited behind: only a ConnectionError here."""
        if self._loop.is_closed():
            # A handler thread that outlived its test (a client that kept its connection).
            raise ConnectionError("the hostile API has closed")
        result: concurrent.futures.Future[httpx.Response] = concurrent.futures.Future()

        def start() -> None:
            if self._closing:
                result.set_exception(ConnectionError("the hostile API has closed"))
                return
            task = self._loop.create_task(self._http.request(method, path, **kwargs))

            def done(task: asyncio.Task[httpx.Response]) -> None:
                if task.cancelled():
                    result.cancel()
                elif (error := task.exception()) is not None:
                    result.set_exception(error)
                else:
                    result.set_result(task.result())

            task.add_done_callback(done)

        try:
            self._loop.call_soon_threadsafe(start)
        except RuntimeError as e:  # closed in between
            raise ConnectionError("the hostile API has closed") from e
        try:
            return result.result(30)
        except concurrent.futures.TimeoutError as e:
            raise ConnectionError("the hostile API did not answer in 30 s") from e
        except concurrent.futures.CancelledError as e:  # close() cancelled it
            raise ConnectionError("the hostile API has closed") from e

    def close(self) -> None:
        """Cancel and await every request still running (a handler thread that outlived its
        test), so no task is destroyed pending when the loop closes, then stop the loop."""

        async def shutdown() -> None:
            self._closing = True  # on the loop's thread: no start() after this makes a task
            running = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            await self._http.aclose()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


class HostileApi:
    def __init__(self) -> None:
        self.upstream_client: _Upstream | None = None
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self.requests: list[Request] = []
        self.url = ""

    def on(self, method: str, path: str, reply: Reply, *, times: int | None = None) -> None:
        """Answer `method` requests whose path matches `path` (re.search) with `reply`."""
        with self._lock:
            self._rules.append(_Rule(method, re.compile(path), reply, times))

    def writes(self) -> list[str]:
        """Every request a read-only command must never send, as `METHOD path`."""
        return [f"{r.method} {r.path}" for r in self.requests if r.is_write]

    def upstream(self, method: str, path: str, body: Any = None) -> Any:
        """Call the well-behaved upstream directly (to seed state); its JSON answer."""
        assert self.upstream_client is not None
        with self._lock:
            response = self.upstream_client.request(method, path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    def answer(self, request: Request) -> Answer:
        with self._lock:
            self.requests.append(request)
            for rule in self._rules:
                if rule.method != request.method or not rule.path.search(request.path):
                    continue
                reply = rule.reply(request) if callable(rule.reply) else rule.reply
                if reply is None:
                    continue
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times == 0:
                        self._rules.remove(rule)
                return reply
            assert self.upstream_client is not None
            target = request.path + ("?" + urlencode(request.query) if request.query else "")
            response = self.upstream_client.request(
                request.method,
                target,
                content=request.body or None,
                headers={"Content-Type": "application/json"} if request.body else {},
            )
        headers = {"Content-Type": response.headers.get("content-type", "application/json")}
        return Answer(response.status_code, response.content, headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client hung up, as it should on an answer it refuses
        super().handle_error(request, client_address)


def _handler(api: HostileApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms stall

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            request = Request(self.command, parts.path, dict(parse_qsl(parts.query)), body)
            answer = api.answer(request)
            if answer.delay:
                time.sleep(answer.delay)
            try:
                self._send(answer)
            except (BrokenPipeError, ConnectionResetError):  # the client stopped reading
                self.close_connection = True

        def _send(self, answer: Answer) -> None:
            self.send_response(answer.status)
            headers = dict(answer.headers)
            if answer.stream is not None:
                headers.setdefault("Content-Type", "application/json")
                headers["Connection"] = "close"
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                for chunk in answer.stream:
                    self.wfile.write(chunk)
                self.close_connection = True
                return
            if isinstance(answer.body, bytes):
                data = answer.body
            elif answer.body is None:
                data = b""
            else:
                data = json.dumps(answer.body).encode("utf-8")
                headers.setdefault("Content-Type", "application/json")
            headers.setdefault("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    return Handler


@contextmanager
def hostile_api(tmp_path: Path, options: EmulatorOptions | None = None) -> Iterator[HostileApi]:
    """Serve a HostileApi on 127.0.0.1 (a free port) until the block ends."""
    app = create_app(
        tmp_path / f"hostile-{time.monotonic_ns()}.db",
        options or EmulatorOptions(settle_ms=0, page_size=50),
    )
    api = HostileApi()
    server = _Server(("127.0.0.1", 0), _handler(api))
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    # The upstream's links name the hostile server, so a client follows them back here.
    api.upstream_client = _Upstream(app, api.url)
    # serve_forever looks for shutdown() every poll_interval (0.5 s by default): that
    # half second was most of each hostile test's teardown (issue 9).
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        api.upstream_client.close()
