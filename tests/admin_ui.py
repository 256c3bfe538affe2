"""A colleague clicking in Atlassian Administration: out-of-band changes through the Admin API.

    ui = AdminUi(emu.url, key, org)
    ui.add_domain("https://new.example.com/**")
    ui.edit_allowlist("Office", add=["203.0.113.0/24"], enabled=False)

Sent over real HTTP to an emulator (the one a test started, or one serving the sandbox's
state file), with the same bodies Atlassian's UI would cause. A plain module, not a conftest.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import httpx

__all__ = ["AdminUi"]

_TYPE_KEYS = {
    "jira": "jira-software",
    "jsm": "jira-servicedesk",
    "confluence": "confluence",
    "compass": "compass",
    "rovo": "rovo",
}


class AdminUi:
    def __init__(self, url: str, key: str | None, org: str) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=url, headers=headers, timeout=30)
        self.base = f"/admin/control/v1/orgs/{org}"
        self.org = org

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> AdminUi:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _pages(self, method: str, path: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        url: str | None = path
        while url:
            answer = self.http.request(method, url, **kwargs)
            answer.raise_for_status()
            page = answer.json()
            yield from page["data"]
            url = page["links"]["next"]
            kwargs.pop("params", None)  # the next link carries the query

    # ------------------------------------------------------------------ MCP

    def settings(self, **attributes: Any) -> None:
        body = {"data": {"type": "rovo-mcp-settings", "attributes": attributes}}
        self.http.patch(f"{self.base}/rovo-mcp/settings", json=body).raise_for_status()

    def add_domain(self, pattern: str) -> None:
        body = {"data": {"type": "rovo-mcp-domain", "attributes": {"pattern": pattern}}}
        self.http.post(f"{self.base}/rovo-mcp/domains", json=body).raise_for_status()

    def remove_domain(self, pattern: str) -> None:
        found = [
            d["id"]
            for d in self._pages("GET", f"{self.base}/rovo-mcp/domains")
            if d["attributes"]["pattern"] == pattern
        ]
        assert found, f"no live domain {pattern}"
        for domain_id in found:
            self.http.delete(f"{self.base}/rovo-mcp/domains/{domain_id}").raise_for_status()

    # ------------------------------------------------------------------ IP allowlists

    def _resources(self, apps: Iterable[str]) -> list[dict[str, str]]:
        path = f"/admin/v2/orgs/{self.org}/workspaces"
        wanted = {_TYPE_KEYS[app] for app in apps}
        return [
            {"id": w["id"]}
            for w in self._pages("POST", path, json={})
            if w["attributes"]["typeKey"] in wanted
        ]

    def _policy(self, name: str) -> dict[str, Any]:
        found = [
            p
            for p in self._pages("GET", f"{self.base}/policies", params={"type": "ip-allowlist"})
            if p["attributes"]["name"] == name
        ]
        assert len(found) == 1, f"{len(found)} live allowlists named {name!r}"
        return found[0]

    def create_allowlist(
        self, name: str, addresses: list[str], apps: list[str], *, enabled: bool = True
    ) -> None:
        attributes = {
            "type": "ip-allowlist",
            "name": name,
            "status": "enabled" if enabled else "disabled",
            "rule": {"in": addresses, "allowMobileBypass": False},
            "resources": self._resources(apps),
        }
        body = {"data": {"type": "policy", "attributes": attributes}}
        self.http.post(f"{self.base}/policies", json=body).raise_for_status()

    def edit_allowlist(
        self,
        name: str,
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        enabled: bool | None = None,
        bypass: bool | None = None,
        apps: list[str] | None = None,
    ) -> None:
        policy = self._policy(name)
        attributes = policy["attributes"]
        gone = set(remove)
        addresses = [a for a in attributes["rule"]["in"] if a not in gone] + list(add)
        rule = {**attributes["rule"], "in": addresses}
        if bypass is not None:
            rule["allowMobileBypass"] = bypass
        status = attributes["status"] if enabled is None else "enabled" if enabled else "disabled"
        resources = (
            [{"id": r["id"]} for r in attributes["resources"]]
            if apps is None
            else self._resources(apps)
        )
        body = {
            "data": {
                "id": policy["id"],
                "type": "policy",
                "attributes": {
                    "type": "ip-allowlist",
                    "name": name,
                    "status": status,
                    "rule": rule,
                    "resources": resources,
                },
            }
        }
        self.http.put(f"{self.base}/policies/{policy['id']}", json=body).raise_for_status()

    def delete_allowlist(self, name: str) -> None:
        policy = self._policy(name)
        self.http.delete(f"{self.base}/policies/{policy['id']}").raise_for_status()
