"""GitHubClient: the one place that talks to the GitHub REST API.

Synchronous on purpose: each CI job sends a handful of requests, one after another.

- The token is attached per request, and only to URLs of the API's own origin: a `Link`
  page on another host is refused, and `download` follows the artifact redirect to the
  storage host without it (a signed URL needs no token; sending one would leak it).
- Retries are few and bounded: 502/503 (not after a POST, whose outcome is then unknown:
  a second comment or issue is worse than a red job) and a rate limit (403/429 with
  `Retry-After`, or `x-ratelimit-remaining: 0`), waiting as the server asks up to `max_wait`.
  The sleep is injected so tests wait on a fake clock.
- Failures become `GitHubError` with GitHub's `message` and the HTTP status.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Self

import httpx

from rovo_reconcile import __version__
from rovo_reconcile.api.retry import server_wait
from rovo_reconcile.api.secrets import Secret, api_key_problem, redact
from rovo_reconcile.github.context import GitHubContext
from rovo_reconcile.github.errors import ArtifactError, GitHubError

__all__ = ["API_VERSION", "PER_PAGE", "GitHubClient"]

API_VERSION = "2022-11-28"
PER_PAGE = 100
_MAX_PAGES = 1_000
_BACKOFF = (1.0, 2.0, 4.0)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class GitHubClient:
    """A context manager over one `httpx.Client`; `transport` lets tests inject failures."""

    def __init__(
        self,
        api_url: str,
        token: Secret,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        max_retries: int = 3,
        max_wait: float = 90.0,
        user_agent: str = f"rovo-reconcile/{__version__}",
    ) -> None:
        problem = api_key_problem(token)
        if problem is not None:
            raise GitHubError(f"GITHUB_TOKEN cannot be used: {problem.replace('API key', 'token')}")
        self._token = token
        self._origin = _origin(httpx.URL(api_url.rstrip("/") + "/"))
        self._sleep = sleep
        self._max_retries = max_retries
        self._max_wait = max_wait
        self._http = httpx.Client(
            base_url=api_url.rstrip("/"),
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": user_agent,
            },
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport,
            follow_redirects=False,
        )

    @classmethod
    def from_context(cls, ctx: GitHubContext, **kwargs: Any) -> GitHubClient:
        """The client a job uses: `GITHUB_API_URL` and `GITHUB_TOKEN` (a UsageError if unset)."""
        return cls(ctx.api_url, ctx.require_token(), **kwargs)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"GitHubClient({str(self._http.base_url)!r}, token=***)"

    # -- requests ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        redirect: bool = False,
    ) -> httpx.Response:
        """Send one API request (retrying as the module says); a 2xx response or GitHubError.

        With `redirect`, a 3xx answer is returned too (not followed) for `download`.
        """
        url = self._http.base_url.join(path.lstrip("/")) if "://" not in path else httpx.URL(path)
        if _origin(url) != self._origin:
            raise GitHubError(f"refusing to send the token to {url.host}: not the API's host")
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    method,
                    url,
                    params=dict(params) if params else None,
                    json=json,
                    headers={"Authorization": f"Bearer {self._token.reveal()}"},
                )
            except httpx.TransportError as e:
                raise GitHubError(
                    f"GitHub API {method} {url.path}: no answer from {url.host} "
                    f"({type(e).__name__})"
                ) from None
            if response.is_success or (redirect and response.status_code in _REDIRECTS):
                return response
            wait = self._retry_wait(method, response, attempt)
            if wait is None:
                raise self._error(method, url.path, response)
            attempt += 1
            self._sleep(wait)

    def get_json(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        return _json(self.request("GET", path, params=params), path)

    def post_json(self, path: str, body: Any) -> Any:
        return _json(self.request("POST", path, json=body), path)

    def patch_json(self, path: str, body: Any) -> Any:
        return _json(self.request("PATCH", path, json=body), path)

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    def paginate(
        self,
        path: str,
        params: Mapping[str, str | int] | None = None,
        *,
        key: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint, following `Link: <...>; rel="next"` page by page.

        `key` names the list in endpoints that wrap it (`{"total_count", "artifacts": [...]}`).
        """
        query: dict[str, str | int] = {"per_page": PER_PAGE, **(params or {})}
        url: str | None = path
        for _ in range(_MAX_PAGES):
            if url is None:
                return
            response = self.request("GET", url, params=query)
            data = _json(response, path)
            items = data.get(key) if key is not None and isinstance(data, dict) else data
            if not isinstance(items, list):
                raise GitHubError(f"GitHub API GET {path}: expected a list, got something else")
            yield from (item for item in items if isinstance(item, dict))
            url = response.links.get("next", {}).get("url")
            query = {}  # the next link carries the query already
        raise GitHubError(f"GitHub API GET {path}: more than {_MAX_PAGES} pages")

    def download(self, path: str, *, max_bytes: int) -> bytes:
        """GET an API URL that redirects to storage, and read at most `max_bytes` of the target.

        The API answers 302 with a signed, short-lived URL on another host. That request is sent
        without the Authorization header; messages name only its host (the query is a credential).
        """
        response = self.request("GET", path, redirect=True)
        for _ in range(5):
            if response.status_code not in _REDIRECTS:
                break
            location = response.headers.get("Location")
            if not location:
                raise ArtifactError(f"GitHub API GET {path}: a redirect without a Location")
            target = response.url.join(location)
            response = self._fetch_unauthenticated(target, max_bytes)
        else:
            raise ArtifactError(f"GitHub API GET {path}: too many redirects")
        return response.content

    def _fetch_unauthenticated(self, url: httpx.URL, max_bytes: int) -> httpx.Response:
        where = f"{url.host}{url.path}"
        request = self._http.build_request("GET", url)
        for header in ("Authorization", "X-GitHub-Api-Version"):
            request.headers.pop(header, None)
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as e:
            raise ArtifactError(
                f"download from {url.host}: no answer ({type(e).__name__})"
            ) from None
        try:
            if response.status_code in _REDIRECTS:
                return response
            if not response.is_success:
                raise ArtifactError(
                    f"download from {where} failed: HTTP {response.status_code}",
                    status=response.status_code,
                )
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise ArtifactError(f"download from {where}: larger than {max_bytes:,} bytes")
                chunks.append(chunk)
        except httpx.TransportError as e:
            raise ArtifactError(f"download from {where}: cut off ({type(e).__name__})") from None
        finally:
            response.close()
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=b"".join(chunks),
            request=request,
        )

    # -- retries and errors -----------------------------------------------------------------

    def _retry_wait(self, method: str, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before trying again, or None to fail now."""
        if attempt >= self._max_retries:
            return None
        status = response.status_code
        if status in (500, 502, 503, 504):  # GitHub's own hiccups; a POST may have landed
            return None if method == "POST" else _BACKOFF[min(attempt, len(_BACKOFF) - 1)]
        if status not in (403, 429):
            return None
        limited = response.headers.get("x-ratelimit-remaining") == "0"
        if "Retry-After" not in response.headers and not limited:
            return None  # a plain 403 is a permission problem; waiting does not fix it
        wait = server_wait(response, datetime.now(UTC))
        if wait is None:
            wait = 60.0  # GitHub: wait at least a minute when it names no time
        return wait if wait <= self._max_wait else None

    def _error(self, method: str, path: str, response: httpx.Response) -> GitHubError:
        message, codes = _parse_error(response)
        status = response.status_code
        text = f"GitHub API {method} {path} failed: HTTP {status}" + (
            f": {message}" if message else ""
        )
        if status == 401:
            text += " (check GITHUB_TOKEN)"
        elif status == 403 and "permission" not in text.lower():
            text += " (the job's `permissions:` may lack a scope)"
        return GitHubError(redact(text, self._token), status=status, errors=codes)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _json(response: httpx.Response, path: str) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise GitHubError(
            f"GitHub API {response.request.method} {path}: the answer is not JSON",
            status=response.status_code,
        ) from None


def _parse_error(response: httpx.Response) -> tuple[str | None, tuple[str, ...]]:
    try:
        data = response.json()
    except ValueError:
        return None, ()
    if not isinstance(data, dict):
        return None, ()
    message = data.get("message") if isinstance(data.get("message"), str) else None
    errors = data.get("errors")
    codes: list[str] = []
    details: list[str] = []
    if isinstance(errors, list):
        for entry in errors:
            if isinstance(entry, dict):
                if isinstance(entry.get("code"), str):
                    codes.append(entry["code"])
                field = entry.get("field")
                if isinstance(field, str) and isinstance(entry.get("code"), str):
                    details.append(f"{field} {entry['code']}")
                elif isinstance(entry.get("message"), str):
                    details.append(entry["message"])
    if details:
        message = f"{message or 'Validation Failed'} ({'; '.join(details)})"
    return message, tuple(codes)
