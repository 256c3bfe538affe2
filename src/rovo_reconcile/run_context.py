"""Where a run happens, for the journal: the commit, run and actor of a GitHub Actions job.

The CLI reads the environment once (`github_context(os.environ)`) and hands
the result to `apply.Journal`, which merges it into every line; the core never
reads `os.environ` for it.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["github_context"]


def github_context(environ: Mapping[str, str]) -> dict[str, str]:
    """`commit`, `run_id`, `actor` and `run_url` from the `GITHUB_*` variables that are set.

    Each key is present only when its variable is set and non-empty; `run_url`
    needs all of GITHUB_SERVER_URL, GITHUB_REPOSITORY and GITHUB_RUN_ID. Outside
    GitHub Actions the result is empty.
    """
    context = {
        key: environ[name]
        for key, name in (
            ("commit", "GITHUB_SHA"),
            ("run_id", "GITHUB_RUN_ID"),
            ("actor", "GITHUB_ACTOR"),
        )
        if environ.get(name)
    }
    server = environ.get("GITHUB_SERVER_URL", "").rstrip("/")
    repository = environ.get("GITHUB_REPOSITORY", "")
    if server and repository and context.get("run_id"):
        context["run_url"] = f"{server}/{repository}/actions/runs/{context['run_id']}"
    return context
