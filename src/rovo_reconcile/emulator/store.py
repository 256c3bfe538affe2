"""The emulator's state: one SQLite file shared safely by threads and processes.

Several emulator processes (and the in-process sandbox) may use one file at the
same time, so every operation opens its own connection, runs in WAL mode with a
generous busy timeout, and does its writes inside `BEGIN IMMEDIATE`: the write
lock is taken up front, so two writers queue instead of failing half-way, and
no write is ever lost or torn.

The store knows nothing about HTTP. It keeps values as the API sent them and
returns plain frozen records; the app turns those into JSON envelopes. Keyset
pagination uses each table's `seq` (creation order), so a page boundary stays
correct while other clients insert or delete.

Time is passed in (`now_ms`) rather than read here, so the store has no clock.

One extra connection, the *anchor*, stays open for the store's lifetime and is
never used: when the last connection to a WAL database closes, SQLite
checkpoints, fsyncs and deletes the WAL, and the next open rebuilds it. With
one connection per operation that made every request ~10x slower (2 ms instead
of 0.2 ms per write). The anchor is closed by `close()` or when the store is
garbage-collected, so it never leaks.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
import weakref
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from rovo_reconcile.app_limit import LIMIT_WORDS, grown_past_limit
from rovo_reconcile.errors import UsageError

__all__ = [
    "DEFAULT_WORKSPACES",
    "DomainRecord",
    "McpSettingsRecord",
    "OverLimit",
    "Page",
    "PolicyRecord",
    "PolicyWrite",
    "StateFileError",
    "Store",
    "WorkspaceRecord",
    "workspace_id",
]

BUSY_TIMEOUT_S = 10.0
SCHEMA_VERSION = 1

# The workspaces every auto-created org gets: (name, typeKey, hostUrl).
# Two Jira Software sites so "apps: [jira]" maps to more than one resource id.
DEFAULT_WORKSPACES: tuple[tuple[str, str, str], ...] = (
    ("acme", "jira-software", "https://acme.atlassian.net"),
    ("acme-eng", "jira-software", "https://acme-eng.atlassian.net"),
    ("acme", "jira-servicedesk", "https://acme.atlassian.net"),
    ("acme", "confluence", "https://acme.atlassian.net/wiki"),
    ("acme", "compass", "https://acme.atlassian.net/compass"),
    ("acme", "rovo", "https://acme.atlassian.net"),
)

_WORKSPACE_NAMESPACE = uuid.UUID("9d3c2f0e-7a51-5c1b-9f0e-6f1f3c2b8a70")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orgs (
    id          TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS workspaces (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    type_key    TEXT NOT NULL,
    host_url    TEXT NOT NULL,
    UNIQUE (org_id, id)
);
CREATE TABLE IF NOT EXISTS policies (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id         TEXT NOT NULL REFERENCES orgs(id),
    id             TEXT NOT NULL UNIQUE,
    type           TEXT NOT NULL,
    name           TEXT NOT NULL,
    status         TEXT NOT NULL,
    rule           TEXT NOT NULL,  -- JSON object, as sent
    resources      TEXT NOT NULL,  -- JSON list of resource ids, as sent
    created_at     TEXT NOT NULL,
    updated_at     TEXT,
    written_at_ms  INTEGER NOT NULL,
    outcome        TEXT NOT NULL   -- what applicationStatus settles to: applied | failed
);
CREATE INDEX IF NOT EXISTS policies_by_org ON policies (org_id, seq);
CREATE TABLE IF NOT EXISTS mcp_settings (
    org_id           TEXT PRIMARY KEY REFERENCES orgs(id),
    allow_supported  INTEGER NOT NULL,
    api_token        INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS mcp_domains (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    id         TEXT NOT NULL UNIQUE,
    pattern    TEXT NOT NULL,  -- as sent
    canonical  TEXT NOT NULL,  -- normalize_domain(pattern): the duplicate key
    UNIQUE (org_id, canonical)
);
CREATE TABLE IF NOT EXISTS request_counts (
    key  TEXT PRIMARY KEY,
    n    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS write_log (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    method  TEXT NOT NULL,
    path    TEXT NOT NULL,
    status  INTEGER NOT NULL
);
"""


class StateFileError(UsageError):
    """The state file cannot be opened, is not SQLite, or is from a newer version."""


class OverLimit(Exception):
    """A policy write would give a workspace more IP-allowlist entries than Atlassian accepts
    (`app_limit`: every ip-allowlist policy attached to it counts, disabled ones too). Nothing
    was written; the app answers 400."""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class WorkspaceRecord:
    id: str
    name: str
    type_key: str
    host_url: str


@dataclass(frozen=True)
class PolicyWrite:
    """The writable part of a policy: what POST creates and PUT replaces."""

    type: str
    name: str
    status: str
    rule: dict[str, Any]
    resources: tuple[str, ...]


@dataclass(frozen=True)
class PolicyRecord:
    id: str
    fields: PolicyWrite
    created_at: str
    updated_at: str | None
    written_at_ms: int
    outcome: str


@dataclass(frozen=True)
class McpSettingsRecord:
    allow_supported: bool
    api_token: bool


@dataclass(frozen=True)
class DomainRecord:
    id: str
    pattern: str


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a keyset-paginated listing; `after` is the key of the next page."""

    items: tuple[T, ...]
    after: int | None


def workspace_id(org_id: str, type_key: str, name: str) -> str:
    """Deterministic, so plans and tests see the same resource ids on every run."""
    return str(uuid.uuid5(_WORKSPACE_NAMESPACE, f"{org_id}\n{type_key}\n{name}"))


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


# --------------------------------------------------------------------------- store


class Store:
    """All persistent state of the emulator. Safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._create_schema()
            anchor = self._connect(check_same_thread=False)  # closed by whichever thread GCs us
        except (OSError, sqlite3.Error) as e:
            raise StateFileError(f"cannot use {self.path} as emulator state: {e}") from e
        self._close_anchor = weakref.finalize(self, anchor.close)
        try:
            anchor.execute("SELECT 1 FROM orgs LIMIT 1").fetchall()  # really opens the file
        except sqlite3.Error as e:
            self.close()
            raise StateFileError(f"cannot use {self.path} as emulator state: {e}") from e

    def _create_schema(self) -> None:
        with closing(self._connect()) as conn:
            # journal_mode is stored in the file; it must be set outside a transaction.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise StateFileError(
                        f"{self.path} was written by a newer rovo-reconcile (schema {version}, "
                        f"this one knows {SCHEMA_VERSION}); use another state file"
                    )
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Release the anchor connection; the store stays usable, only slower."""
        self._close_anchor()

    def _connect(self, *, check_same_thread: bool = True) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; we say BEGIN ourselves.
        return sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=check_same_thread,
        )

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        # Every read is a single statement, which SQLite runs on one consistent snapshot.
        with closing(self._connect()) as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as conn:
            # In WAL mode NORMAL survives any crash of a process; only an OS crash or power
            # loss may undo the last commits (never corrupt the file). FULL would fsync every
            # request, which an emulator does not need.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # ------------------------------------------------------------------ orgs

    def org_exists(self, org_id: str) -> bool:
        with self._read() as conn:
            return _org_exists(conn, org_id)

    def ensure_org(self, org_id: str, now_ms: int) -> bool:
        """Create the org with its default workspaces and MCP settings; True if it was new."""
        if self.org_exists(org_id):  # the common case needs no write lock
            return False
        with self._write() as conn:
            if _org_exists(conn, org_id):
                return False
            conn.execute("INSERT INTO orgs (id, created_at) VALUES (?, ?)", (org_id, _iso(now_ms)))
            conn.executemany(
                "INSERT INTO workspaces (org_id, id, name, type_key, host_url) VALUES (?, ?, ?, ?, ?)",
                [
                    (org_id, workspace_id(org_id, type_key, name), name, type_key, host)
                    for name, type_key, host in DEFAULT_WORKSPACES
                ],
            )
            # Atlassian's defaults for a new org: supported domains allowed, API tokens off.
            conn.execute(
                "INSERT INTO mcp_settings (org_id, allow_supported, api_token) VALUES (?, 1, 0)",
                (org_id,),
            )
            return True

    def list_orgs(self, after: int | None, limit: int) -> Page[str]:
        """Org ids in creation order (`GET /admin/v1/orgs`), keyed by SQLite's rowid."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT rowid, id FROM orgs WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (after or 0, limit + 1),
            ).fetchall()
        items = [r[1] for r in rows[:limit]]
        return Page(tuple(items), rows[limit - 1][0] if len(rows) > limit else None)

    # ------------------------------------------------------------------ workspaces

    def list_workspaces(self, org_id: str, after: int | None, limit: int) -> Page[WorkspaceRecord]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT seq, id, name, type_key, host_url FROM workspaces"
                " WHERE org_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (org_id, after or 0, limit + 1),
            ).fetchall()
        items = [WorkspaceRecord(r[1], r[2], r[3], r[4]) for r in rows[:limit]]
        return Page(tuple(items), rows[limit - 1][0] if len(rows) > limit else None)

    # ------------------------------------------------------------------ policies

    _POLICY_COLUMNS = (
        "seq, id, type, name, status, rule, resources, created_at, updated_at,"
        " written_at_ms, outcome"
    )

    def list_policies(
        self, org_id: str, policy_type: str | None, after: int | None, limit: int
    ) -> Page[PolicyRecord]:
        query = f"SELECT {self._POLICY_COLUMNS} FROM policies WHERE org_id = ? AND seq > ?"
        args: list[object] = [org_id, after or 0]
        if policy_type is not None:
            query += " AND type = ?"
            args.append(policy_type)
        query += " ORDER BY seq LIMIT ?"
        args.append(limit + 1)
        with self._read() as conn:
            rows = conn.execute(query, args).fetchall()
        items = [_policy(r) for r in rows[:limit]]
        return Page(tuple(items), rows[limit - 1][0] if len(rows) > limit else None)

    def get_policy(self, org_id: str, policy_id: str) -> PolicyRecord | None:
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {self._POLICY_COLUMNS} FROM policies WHERE org_id = ? AND id = ?",
                (org_id, policy_id),
            ).fetchone()
        return None if row is None else _policy(row)

    def create_policy(
        self, org_id: str, fields: PolicyWrite, now_ms: int, outcome: str
    ) -> PolicyRecord:
        policy_id = str(uuid.uuid4())
        with self._write() as conn:
            _check_limit(conn, org_id, None, fields)
            conn.execute(
                "INSERT INTO policies (org_id, id, type, name, status, rule, resources,"
                " created_at, updated_at, written_at_ms, outcome)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                (org_id, policy_id, *_policy_values(fields), _iso(now_ms), now_ms, outcome),
            )
        return PolicyRecord(policy_id, fields, _iso(now_ms), None, now_ms, outcome)

    def replace_policy(
        self, org_id: str, policy_id: str, fields: PolicyWrite, now_ms: int, outcome: str
    ) -> PolicyRecord | None:
        """Full replacement of the writable fields; None when there is no such policy."""
        with self._write() as conn:
            if not conn.execute(
                "SELECT 1 FROM policies WHERE org_id = ? AND id = ?", (org_id, policy_id)
            ).fetchone():
                return None
            _check_limit(conn, org_id, policy_id, fields)
            updated = conn.execute(
                "UPDATE policies SET type = ?, name = ?, status = ?, rule = ?, resources = ?,"
                " updated_at = ?, written_at_ms = ?, outcome = ?"
                " WHERE org_id = ? AND id = ?",
                (*_policy_values(fields), _iso(now_ms), now_ms, outcome, org_id, policy_id),
            ).rowcount
            if not updated:
                return None
            row = conn.execute(
                f"SELECT {self._POLICY_COLUMNS} FROM policies WHERE id = ?", (policy_id,)
            ).fetchone()
        return _policy(row)

    def delete_policy(self, org_id: str, policy_id: str) -> bool:
        with self._write() as conn:
            return bool(
                conn.execute(
                    "DELETE FROM policies WHERE org_id = ? AND id = ?", (org_id, policy_id)
                ).rowcount
            )

    # ------------------------------------------------------------------ MCP (our own contract)

    def get_mcp_settings(self, org_id: str) -> McpSettingsRecord:
        with self._read() as conn:
            row = conn.execute(
                "SELECT allow_supported, api_token FROM mcp_settings WHERE org_id = ?", (org_id,)
            ).fetchone()
        if row is None:  # an org always has settings; be robust to a hand-edited file
            return McpSettingsRecord(allow_supported=True, api_token=False)
        return McpSettingsRecord(bool(row[0]), bool(row[1]))

    def update_mcp_settings(
        self, org_id: str, *, allow_supported: bool | None, api_token: bool | None
    ) -> McpSettingsRecord:
        """Change only the given settings, atomically, and return the result."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO mcp_settings (org_id, allow_supported, api_token) VALUES (?, 1, 0)"
                " ON CONFLICT (org_id) DO NOTHING",
                (org_id,),
            )
            if allow_supported is not None:
                conn.execute(
                    "UPDATE mcp_settings SET allow_supported = ? WHERE org_id = ?",
                    (int(allow_supported), org_id),
                )
            if api_token is not None:
                conn.execute(
                    "UPDATE mcp_settings SET api_token = ? WHERE org_id = ?",
                    (int(api_token), org_id),
                )
            row = conn.execute(
                "SELECT allow_supported, api_token FROM mcp_settings WHERE org_id = ?", (org_id,)
            ).fetchone()
        return McpSettingsRecord(bool(row[0]), bool(row[1]))

    def list_domains(self, org_id: str, after: int | None, limit: int) -> Page[DomainRecord]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT seq, id, pattern FROM mcp_domains"
                " WHERE org_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (org_id, after or 0, limit + 1),
            ).fetchall()
        items = [DomainRecord(r[1], r[2]) for r in rows[:limit]]
        return Page(tuple(items), rows[limit - 1][0] if len(rows) > limit else None)

    def add_domain(self, org_id: str, pattern: str, canonical: str) -> DomainRecord | None:
        """Add a domain; None when an equal one (after normalisation) exists."""
        domain_id = str(uuid.uuid4())
        with self._write() as conn:
            inserted = conn.execute(
                "INSERT INTO mcp_domains (org_id, id, pattern, canonical) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (org_id, canonical) DO NOTHING",
                (org_id, domain_id, pattern, canonical),
            ).rowcount
        return DomainRecord(domain_id, pattern) if inserted else None

    def delete_domain(self, org_id: str, domain_id: str) -> bool:
        with self._write() as conn:
            return bool(
                conn.execute(
                    "DELETE FROM mcp_domains WHERE org_id = ? AND id = ?", (org_id, domain_id)
                ).rowcount
            )

    # ------------------------------------------------------------------ request counters

    def count_request(self, method: str, path: str, status: int, *, write: bool) -> None:
        """Count one request; kept in the file so every process adds to the same totals."""
        keys = [f"method:{method}", f"path:{method} {path}", f"status:{status}", "total"]
        if write:
            keys.append("writes")
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO request_counts (key, n) VALUES (?, 1)"
                " ON CONFLICT (key) DO UPDATE SET n = n + 1",
                [(k,) for k in keys],
            )
            if write:
                conn.execute(
                    "INSERT INTO write_log (method, path, status) VALUES (?, ?, ?)",
                    (method, path, status),
                )

    def write_log(self) -> list[dict[str, Any]]:
        """Every write request seen, in order, with the status it was answered (or would
        have been, when the connection was dropped after the write): the server's own record."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT method, path, status FROM write_log ORDER BY seq"
            ).fetchall()
        return [{"method": m, "path": p, "status": s} for m, p, s in rows]

    def stats(self) -> dict[str, Any]:
        with self._read() as conn:
            rows: Sequence[tuple[str, int]] = conn.execute(
                "SELECT key, n FROM request_counts ORDER BY key"
            ).fetchall()
        counts = dict(rows)
        return {
            "requests": _with_prefix(counts, "method:"),
            "writes": counts.get("writes", 0),
            "total": counts.get("total", 0),
            "by_path": _with_prefix(counts, "path:"),
            "responses": _with_prefix(counts, "status:"),
        }

    def reset_stats(self) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM request_counts")
            conn.execute("DELETE FROM write_log")


# --------------------------------------------------------------------------- helpers


def _org_exists(conn: sqlite3.Connection, org_id: str) -> bool:
    return conn.execute("SELECT 1 FROM orgs WHERE id = ?", (org_id,)).fetchone() is not None


def _check_limit(
    conn: sqlite3.Connection, org_id: str, policy_id: str | None, fields: PolicyWrite
) -> None:
    """Raise OverLimit when writing `fields` (as policy `policy_id`, None for a new one) takes
    a workspace past the limit: over it afterwards, and holding more than before."""
    if fields.type != "ip-allowlist":
        return
    before: dict[str, int] = {}
    after: dict[str, int] = {}
    rows = conn.execute(
        "SELECT id, rule, resources FROM policies WHERE org_id = ? AND type = 'ip-allowlist'",
        (org_id,),
    ).fetchall()
    for row_id, rule, resources in rows:
        entries = len(json.loads(rule).get("in", ()))
        for resource in set(json.loads(resources)):
            before[resource] = before.get(resource, 0) + entries
            if row_id != policy_id:
                after[resource] = after.get(resource, 0) + entries
    for resource in set(fields.resources):
        after[resource] = after.get(resource, 0) + len(fields.rule.get("in", ()))
    grown = grown_past_limit(before, after)
    if grown:
        names = dict(
            conn.execute(
                "SELECT id, type_key || ' workspace ' || name FROM workspaces WHERE org_id = ?",
                (org_id,),
            ).fetchall()
        )
        where = ", ".join(
            f"{names.get(resource, f'resource {resource}')} ({count})"
            for resource, count in grown.items()
        )
        raise OverLimit(
            f"the IP allowlists covering {where} would hold more entries than allowed: "
            f"{LIMIT_WORDS}"
        )


def _policy_values(fields: PolicyWrite) -> tuple[str, str, str, str, str]:
    return (
        fields.type,
        fields.name,
        fields.status,
        json.dumps(fields.rule, separators=(",", ":")),
        json.dumps(list(fields.resources), separators=(",", ":")),
    )


def _policy(row: Sequence[Any]) -> PolicyRecord:
    _seq, policy_id, ptype, name, status, rule, resources, created, updated, written, outcome = row
    fields = PolicyWrite(ptype, name, status, json.loads(rule), tuple(json.loads(resources)))
    return PolicyRecord(policy_id, fields, created, updated, int(written), outcome)


def _with_prefix(counts: dict[str, int], prefix: str) -> dict[str, int]:
    return {k.removeprefix(prefix): n for k, n in counts.items() if k.startswith(prefix)}
