"""An emulator of the Atlassian Admin API, for tests, demos and the `sandbox` target.

It serves the IP-allowlist policy endpoints in Atlassian's Admin Control API
shapes, and the Rovo MCP settings endpoints that are **this project's own
contract** (Atlassian publishes no MCP admin API), from a SQLite file. The same
app runs on a socket (`rovo-reconcile emulator serve`) or in-process behind
`httpx.ASGITransport`, so the sandbox exercises the real HTTP client code.

`create_app` is imported lazily: the CLI imports this package only to reach
the `emulator` command, and starlette should not load for `--help`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rovo_reconcile.emulator.app import EmulatorOptions, create_app

__all__ = ["EmulatorOptions", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from rovo_reconcile.emulator import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
