"""Run the CLI in a fresh process forked from an interpreter that has already imported it.

Every end-to-end test runs `python -m rovo_reconcile ARGS...` as its own process. Most of
that process's CPU (~0.2 s of ~0.3 s) is the interpreter starting and importing the package
and its libraries: the same work ~400 times a run, which on two cores was the difference
between a 65 s suite and a 50 s one (issue 9). Here one server per pytest worker imports every
module of the package once (`_preload`: imports only, no function of ours runs), then forks a
child per command that runs `rovo_reconcile.__main__` through `runpy`, as `python -m` does.

The child is a real process: its own pid, argv, environment, working directory, stdout and
stderr (the caller's files, passed over a Unix socket; stdin is /dev/null), the exit status
of a new interpreter (a code, or the signal that killed it; stdio flushed, atexit and
weakref.finalize callbacks run), real sockets to a real emulator, real files. What it skips
is the import, and the package does no work at import time that depends on the process:
no module reads the environment, the directory, the arguments or the clock while it is
imported (tests/test_warm_cli.py checks that, and holds each child's output and exit code to
a cold process's, command for command).

What a warm child cannot reproduce, it does not pretend to: a call whose environment differs
from the server's in anything read while the interpreter and its libraries start (PYTHON*,
LANG, LANGUAGE, LC_*, TZ) runs cold, as does every call of a test marked `cold_cli` and every
call when ROVO_TEST_COLD_CLI=1; `.ci/run` runs the whole suite that way too. Tests of
start-up itself (imports, console script, completion, the pre-commit hook) start their
processes themselves. Children share the server's hash seed (a test that compares two runs
for order sets PYTHONHASHSEED, which sends them cold); `random` is reseeded in each.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO

LAZY_LIBRARIES = ("jsonschema", "uvicorn", "deepdiff", "publicsuffixlist")
"""Imported inside functions of the package, on some paths only."""


def _preload() -> None:
    """Import every module of the package, and what they import, as `python -m` would.

    Only imports: no function of the package runs in the server, so every cache a command
    fills (`functools.cache` and the like) is empty in each child, as in a new interpreter.
    """
    import pkgutil

    import rovo_reconcile

    for module in pkgutil.walk_packages(rovo_reconcile.__path__, "rovo_reconcile."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    for name in LAZY_LIBRARIES:
        importlib.import_module(name)


def interpreter_env(env: Mapping[str, str]) -> dict[str, str]:
    """What the interpreter reads from the environment while it starts."""
    return {
        k: v
        for k, v in env.items()
        if k.startswith(("PYTHON", "LC_")) or k in ("LANG", "LANGUAGE", "TZ")
    }


_HEADER = struct.Struct("!I")

_SOCKET_PATH_MAX = 100
"""A Unix socket's path must fit in 108 bytes (Linux's sun_path, its NUL included)."""


def _send(sock: socket.socket, payload: dict[str, object], fds: list[int] | None = None) -> None:
    data = json.dumps(payload).encode()
    message = _HEADER.pack(len(data)) + data
    if fds:
        socket.send_fds(sock, [message], fds)
    else:
        sock.sendall(message)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            raise ConnectionError("the warm CLI server closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _recv(sock: socket.socket) -> dict[str, object]:
    (length,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    return json.loads(_recv_exact(sock, length))  # type: ignore[no-any-return]


# ------------------------------------------------------------------ the server


def _serve(path: str) -> None:
    import selectors

    _preload()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    children: dict[int, socket.socket | None] = {}
    """Each child until it is reaped, with its caller's connection while the caller listens:
    its exit status goes there, signals come from it."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    selector.register(0, selectors.EVENT_READ)  # the worker's pipe: EOF when it is gone
    print("ready", flush=True)
    while True:
        for key, _ in selector.select():
            if key.fileobj is listener:
                conn, _ = listener.accept()
                # A child keeps its stdio and nothing else of the server's: a connection it
                # held would hide the server's death from that caller.
                server = [listener, conn, wake_r, wake_w, selector]
                pid = _start(conn, server, children)
                if pid is None:
                    conn.close()
                else:
                    children[pid] = conn
                    selector.register(conn, selectors.EVENT_READ, pid)
            elif key.fileobj == wake_r:
                os.read(wake_r, 4096)
            elif key.fileobj == 0:
                if not os.read(0, 4096):  # the pytest worker died: nobody will stop these
                    for pid in children:
                        os.kill(pid, signal.SIGKILL)
                    os._exit(0)
            else:
                _signal(key.fileobj, key.data, children, selector)  # type: ignore[arg-type]
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            conn = children.pop(pid)
            if conn is None:
                continue
            selector.unregister(conn)
            with contextlib.suppress(OSError):  # the caller stopped listening
                _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
            conn.close()


def _signal(
    conn: socket.socket, pid: int, children: dict[int, socket.socket | None], selector: object
) -> None:
    """A caller asks to signal its child; while the child runs, it has not been reaped.

    A caller that closes its connection instead can no longer wait for its child or stop it
    (a test that failed first): the child is killed, and reaped as any other."""
    try:
        message = _recv(conn)
    except (ConnectionError, OSError):
        children[pid] = None
        selector.unregister(conn)  # type: ignore[attr-defined]
        conn.close()
        os.kill(pid, signal.SIGKILL)
        return
    os.kill(pid, int(message["signal"]))  # type: ignore[call-overload]


def _start(
    conn: socket.socket, server: list[object], children: dict[int, socket.socket | None]
) -> int | None:
    """Fork a child for the request on `conn`; `server`: what the child must not keep open
    (the server's listener, pipes and selector), and the other children's connections."""
    # The descriptors travel with the message's first bytes: read those with recv_fds.
    head, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 3)
    if len(fds) != 3:
        for fd in fds:
            os.close(fd)
        return None
    head += _recv_exact(conn, _HEADER.size - len(head))
    (length,) = _HEADER.unpack(head)
    request = json.loads(_recv_exact(conn, length))
    pid = os.fork()
    if pid == 0:
        try:
            signal.set_wakeup_fd(-1)  # before its pipe closes: a signal would write there
            for held in [*server, *(c for c in children.values() if c is not None)]:
                if isinstance(held, int):
                    os.close(held)
                else:
                    held.close()  # type: ignore[attr-defined]
            _child(request, fds)
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(70)
    for fd in fds:
        os.close(fd)
    _send(conn, {"pid": pid})
    return pid


def _child(request: dict[str, object], fds: list[int]) -> None:
    """Become `python -m rovo_reconcile ARGS...` in the request's directory and environment."""
    import atexit
    import random
    import runpy
    import threading

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(str(request["cwd"]))
    os.environ.clear()
    os.environ.update(request["env"])  # type: ignore[arg-type]
    sys.path[0] = os.getcwd()
    sys.argv = ["-m", *request["args"]]  # type: ignore[misc]
    sys.stdin = _stream(0, "r", sys.stdin)
    sys.stdout = _stream(1, "w", sys.stdout)
    sys.stderr = _stream(2, "w", sys.stderr)
    random.seed()  # as a new interpreter would, not the server's sequence in every child
    code: int
    try:
        runpy.run_module("rovo_reconcile", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:
        code = _exit_code(e)
    except BaseException:
        sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]
        code = 1
    # What the interpreter does on its way out: wait for threads, run atexit functions
    # (weakref.finalize's among them), flush stdout and stderr (a failure is exit 120).
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            code = 120
    os._exit(code)


def _stream(fd: int, mode: str, like: io.TextIOWrapper) -> io.TextIOWrapper:  # type: ignore[type-arg]
    """A fresh text stream on `fd` with the encoding and buffering Python gave the server's."""
    raw = io.FileIO(fd, mode, closefd=False)
    buffer: io.BufferedIOBase = (
        io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)  # type: ignore[assignment]
    )
    return io.TextIOWrapper(
        buffer,
        encoding=like.encoding,
        errors=like.errors,
        line_buffering=like.line_buffering,
        write_through=like.write_through,
    )


def _exit_code(e: SystemExit) -> int:
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code
    print(e.code, file=sys.stderr)
    return 1


# ------------------------------------------------------------------ the client


class WarmProcess:
    """A child of the warm server, with the part of `subprocess.Popen` the tests use."""

    def __init__(self, sock: socket.socket, args: list[str], stdout: IO[str] | None) -> None:
        self._sock = sock
        self.args = args
        self.stdout = stdout
        pid = _recv(sock)["pid"]
        assert isinstance(pid, int)
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            ready, _, _ = select.select([self._sock], [], [], 0)
            if ready:
                self._finish()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            ready, _, _ = select.select([self._sock], [], [], timeout)
            if not ready:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            self._finish()
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            _send(self._sock, {"signal": int(sig)})

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def _finish(self) -> None:
        try:
            code = _recv(self._sock)["exit"]
        finally:  # a server that died has closed the connection: nothing more will come
            self._sock.close()
        assert isinstance(code, int)
        self.returncode = code


class WarmCli:
    """One server per pytest worker: `python -m rovo_reconcile ARGS...` without the start-up."""

    def __init__(self, directory: Path) -> None:
        self._path = str(directory / "warm-cli.sock")
        self._short: str | None = None
        if len(self._path.encode()) > _SOCKET_PATH_MAX:  # a deep TMPDIR, as on some CI hosts
            self._short = tempfile.mkdtemp(prefix="rr-warm-", dir="/tmp")
            self._path = os.path.join(self._short, "s")
        self._env = interpreter_env(os.environ)
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, tests.warm_cli as w; w._serve(sys.argv[1])",
                self._path,
            ],
            cwd=Path(__file__).resolve().parent.parent,
            stdin=subprocess.PIPE,  # never written: the server ends when it reads EOF
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        ready = self._process.stdout.readline()
        if ready != "ready\n":
            raise RuntimeError(f"the warm CLI server did not start: {ready!r}")

    def serves(self, env: Mapping[str, str]) -> bool:
        """Whether a child in `env` starts as a cold interpreter would."""
        return interpreter_env(env) == self._env and self._process.poll() is None

    def spawn(
        self, args: list[str], *, cwd: Path, env: Mapping[str, str], stdout: int, stderr: int
    ) -> WarmProcess:
        """Start `python -m rovo_reconcile ARGS...` with stdin from /dev/null, stdout and
        stderr on the given descriptors (the caller keeps its own copies)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self._path)
            with open(os.devnull, "rb") as stdin:
                request = {"args": args, "cwd": str(cwd), "env": dict(env)}
                _send(sock, request, [stdin.fileno(), stdout, stderr])
            return WarmProcess(sock, ["rovo_reconcile", *args], None)
        except BaseException:
            sock.close()
            raise

    def run(
        self, args: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float
    ) -> tuple[int, str, str]:
        """`subprocess.run(..., capture_output=True, text=True, timeout=timeout)`."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            child = self.spawn(args, cwd=cwd, env=env, stdout=out.fileno(), stderr=err.fileno())
            try:
                code = child.wait(timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
                raise
            out.seek(0)
            err.seek(0)
            return code, _text(out.read()), _text(err.read())

    def close(self) -> None:
        self._process.kill()
        self._process.wait()
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.close()
        self._process.stdout.close()
        if self._short is not None:
            shutil.rmtree(self._short, ignore_errors=True)


def _text(data: bytes) -> str:
    # subprocess.run(text=True) decodes with the locale's encoding and universal newlines.
    return io.TextIOWrapper(io.BytesIO(data), encoding=None).read()


_SHARED: list[WarmCli] = []
"""This pytest process's server, once the `warm_cli` fixture has started it."""


def shared(env: Mapping[str, str]) -> WarmCli | None:
    """The server that can run a child in `env`, if there is one."""
    if _SHARED and _SHARED[0].serves(env):
        return _SHARED[0]
    return None
