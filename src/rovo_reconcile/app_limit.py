"""Atlassian's limit of 500 IP-allowlist entries per app, counted the one way everything shares.

Atlassian's page says "500 IP addresses or network blocks per product". It does not say
whether a disabled allowlist counts; rovo-reconcile counts it, as `validate` does: a disabled
list can be enabled later with no other check, so its entries are already spoken for. Every
entry of every allowlist covering an app counts once for that app (a list on three apps
counts for each of them).

Pure: allowlist values in (the plan's `allowlist_value` shape), counts out. Used by the write
order (no intermediate state past the limit), by `export` (no invalid policy written) and, per
workspace, by the emulator (`emulator/store.py`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rovo_reconcile.policy.rules import MAX_ENTRIES_PER_APP

__all__ = [
    "LIMIT_WORDS",
    "MAX_ENTRIES_PER_APP",
    "counted_apps",
    "entries_per_app",
    "export_refusal",
    "grown_past_limit",
    "over_limit",
]

LIMIT_WORDS = (
    f"Atlassian accepts at most {MAX_ENTRIES_PER_APP} entries over all allowlists covering one "
    "app, disabled ones included"
)


def entries_per_app(
    allowlists: Iterable[Mapping[str, Any]],
    kept_apps: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, int]:
    """Per app, the entries of every allowlist (enabled or not) covering it.

    `kept_apps` names, per list, what it stays attached to whatever its value says (apps it
    covers only partly, attachments the model does not express): those count too.
    """
    counts: dict[str, int] = defaultdict(int)
    for allowlist in allowlists:
        entries = len(allowlist["addresses"])
        for app in counted_apps(allowlist, kept_apps):
            counts[app] += entries
    return dict(counts)


def counted_apps(
    allowlist: Mapping[str, Any], kept_apps: Mapping[str, Sequence[str]] | None = None
) -> set[str]:
    """The apps an allowlist's entries count for: those it covers and those `kept_apps` says
    it stays attached to, enabled or not."""
    return {*allowlist["apps"], *(kept_apps or {}).get(allowlist["name"], ())}


def over_limit(counts: Mapping[str, int]) -> dict[str, int]:
    """The apps past the limit, with their counts."""
    return {app: n for app, n in sorted(counts.items()) if n > MAX_ENTRIES_PER_APP}


def grown_past_limit(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """Apps a write takes past the limit: over it afterwards and holding more than before.

    A write that leaves an app over the limit but lowers its count is not refused: an org
    already past the limit (set up before the limit, or by hand) must be able to shrink.
    """
    return {
        app: n
        for app, n in sorted(after.items())
        if n > MAX_ENTRIES_PER_APP and n > before.get(app, 0)
    }


def export_refusal(allowlists: Iterable[Mapping[str, Any]]) -> str | None:
    """Why live allowlists cannot be exported as a policy (one `validate` would reject for
    `allowlist.app-limit`), or None. Only the apps a policy would list count: an app the
    export leaves out (partly attached) cannot make the policy invalid."""
    over = over_limit(entries_per_app(allowlists))
    if not over:
        return None
    apps = ", ".join(f"{app} ({count})" for app, count in over.items())
    return (
        f"the live allowlists covering {apps} hold more than {MAX_ENTRIES_PER_APP} entries; "
        f"{LIMIT_WORDS}, so a policy holding them would not validate (allowlist.app-limit) and "
        "none was written. Merge addresses into wider blocks or remove some in Atlassian "
        "Administration, then export again"
    )
