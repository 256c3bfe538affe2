"""One apply per org at a time: a lease per user, target and org (an exclusive `flock`)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

from rovo_reconcile.errors import RovoError

__all__ = ["LEASE_DIR_ENV", "LeaseHeld", "LeaseUnavailable", "lease_dir", "org_lease"]

LEASE_DIR_ENV = "ROVO_RECONCILE_LEASE_DIR"


def lease_dir() -> Path:
    """Where this user's leases live: `$ROVO_RECONCILE_LEASE_DIR`, else
    `~/.cache/rovo-reconcile/leases`.

    One place per user, whatever `--journal` or the checkout: two applies on one org
    exclude each other however they were started. The XDG variables are deliberately not
    consulted: a shell and a cron job would see different ones and so miss each other's
    leases.
    """
    override = os.environ.get(LEASE_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    return Path.home() / ".cache" / "rovo-reconcile" / "leases"


@contextmanager
def org_lease(target: str | None, org_id: str, run: str) -> Iterator[None]:
    """Hold the lease of `org_id` on `target` for the block, or raise `LeaseHeld` at once.

    The lease is an exclusive `flock` on `lease_dir()/<hash of target label and org>.lock`:
    the kernel drops it when the holder exits, even on SIGKILL, so a crash never leaves an
    org locked. It excludes every apply of this user on this machine (whatever its journal
    or checkout); CI jobs on separate runners are kept apart by the workflow's concurrency
    group. A lease that cannot be taken at all (no locks on that file system, a directory
    that cannot be written) is a `LeaseUnavailable`, before anything is read or written.
    """
    try:
        directory = lease_dir()
    except RuntimeError as e:  # no $HOME and no password entry to find one
        raise LeaseUnavailable(org_id, "~/.cache/rovo-reconcile/leases", str(e)) from e
    digest = hashlib.sha256(f"{target}\0{org_id}".encode()).hexdigest()[:16]
    path = directory / f"{digest}.lock"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise LeaseUnavailable(org_id, str(path), _reason(e)) from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise LeaseHeld(org_id, _holder(os.pread(fd, 4096, 0))) from e
        except OSError as e:  # ENOLCK: a file system without locks (some NFS mounts)
            raise LeaseUnavailable(org_id, str(path), _reason(e)) from e
        holder = json.dumps(
            {"run": run, "pid": os.getpid(), "host": socket.gethostname(), "since": _now()}
        )
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder.encode("utf-8"), 0)
        except OSError as e:
            raise LeaseUnavailable(org_id, str(path), _reason(e)) from e
        try:
            yield
        finally:
            with suppress(OSError):
                os.ftruncate(fd, 0)  # released: no stale holder to show
    finally:
        os.close(fd)  # closing the descriptor drops the flock


class LeaseHeld(RovoError):
    """Another apply holds this org's lease."""

    def __init__(self, org_id: str, holder: str) -> None:
        super().__init__(
            f"another apply is running on org {org_id} (lease held by {holder}); "
            "nothing was written: run apply again once it has finished"
        )


class LeaseUnavailable(RovoError):
    """This org's lease could not be taken: nothing was read or written (exit 1)."""

    def __init__(self, org_id: str, path: str, reason: str) -> None:
        super().__init__(
            f"cannot take the lease for org {org_id} at {path} ({reason}); nothing was "
            f"written: set {LEASE_DIR_ENV} to a local directory this user can write "
            "(the lease keeps two applies on one org apart)"
        )


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def _holder(data: bytes) -> str:
    """Who holds a lease, from its lock file, in words."""
    try:
        holder = json.loads(data)
        return (
            f"run {holder['run']}, pid {holder['pid']} on {holder['host']} since {holder['since']}"
        )
    except (ValueError, TypeError, KeyError):
        return "another process"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
