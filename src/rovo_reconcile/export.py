"""`export`: live organizations as new policy files, each with the schema modeline.

`export --all --dir D` lists the orgs the key can see (`GET /admin/v1/orgs`), reads
each (read-only), and writes one file per org named by a slug of its name. Every
file is checked before the first is written: an org that could not be read, or a
file that already exists, stops the run with nothing written. Each file is created
whole (a temporary file linked into place, which fails if the name was taken since).
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rovo_reconcile.api.live import LiveOrg
from rovo_reconcile.api.orgs import VisibleOrg, list_orgs
from rovo_reconcile.errors import RovoError
from rovo_reconcile.live_state import read_orgs
from rovo_reconcile.progress import OnOrgDone
from rovo_reconcile.render.live import render_export
from rovo_reconcile.targets import Target, open_client

__all__ = [
    "SCHEMA_FILE",
    "ExportedFile",
    "export_all",
    "file_names",
    "schema_reference",
    "slug",
    "write_new_files",
]

SCHEMA_FILE = "rovo-policy.schema.json"
DEFAULT_SCHEMA_REFERENCE = f"../schemas/{SCHEMA_FILE}"
"""Where the schema sits in the policy-repository layout (examples/policy-repo/):
`policies/<org>.yaml` next to `schemas/`."""


@dataclass(frozen=True)
class ExportedFile:
    path: Path
    org_id: str
    name: str | None
    text: str


def slug(name: str) -> str:
    """`Contoso Savings Bank` -> `contoso-savings-bank`: ASCII letters, digits and dashes."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60].strip("-")


def file_names(orgs: Sequence[VisibleOrg]) -> dict[str, str]:
    """Each org's file name: the slug of its name, or its id when the name gives none; names
    that two orgs would share get the first eight characters of the id appended."""
    stems = {org.id: slug(org.name) or org.id for org in orgs}
    shared = {stem for stem, count in Counter(stems.values()).items() if count > 1}
    return {
        org_id: f"{stem}-{org_id[:8]}.yaml" if stem in shared else f"{stem}.yaml"
        for org_id, stem in stems.items()
    }


def schema_reference(directory: Path) -> tuple[str, bool]:
    """The modeline's schema path for files in `directory`: relative to the nearest
    `schemas/rovo-policy.schema.json` above it (True), else the policy-repository layout's
    `../schemas/rovo-policy.schema.json` (False: the caller says it was not found)."""
    start = directory.resolve()
    for folder in (start, *start.parents):
        candidate = folder / "schemas" / SCHEMA_FILE
        if candidate.is_file():
            return Path(os.path.relpath(candidate, start)).as_posix(), True
    return DEFAULT_SCHEMA_REFERENCE, False


async def export_all(
    target: Target,
    directory: Path,
    *,
    concurrency: int = 8,
    on_done: OnOrgDone | None = None,
) -> tuple[list[ExportedFile], int]:
    """Every org the key can see, as files for `directory` (not written yet), and the
    number of requests sent. Raises RovoError naming every org that could not be read."""
    reference, _ = schema_reference(directory)
    async with open_client(target, read_only=True, concurrency=concurrency) as (client, counter):
        orgs = await list_orgs(client, target.api_url)
        if not orgs:
            raise RovoError(
                "the API key lists no organizations (GET /admin/v1/orgs answered an empty "
                "list, as Atlassian's organization-scoped keys are known to); export each "
                "organization with --org ID instead"
            )
        results = await read_orgs(client, target.api_url, [o.id for o in orgs], on_done=on_done)
        requests = counter.total
    names = file_names(orgs)
    files: list[ExportedFile] = []
    failed: list[str] = []
    for org in orgs:
        result = results[org.id]
        if isinstance(result, LiveOrg) and (ambiguity := result.ambiguity()) is not None:
            result = RovoError(ambiguity)
        if isinstance(result, LiveOrg) and (over := _over_limit(result)) is not None:
            result = RovoError(over)  # it would export as a policy validate rejects
        if isinstance(result, RovoError):
            failed.append(f"org {org.name} ({org.id}): {result}")
            continue
        text = render_export(result, target.label, schema=reference, name=org.name)
        files.append(ExportedFile(directory / names[org.id], org.id, org.name, text))
    if failed:
        raise RovoError(
            f"{len(failed)} of {len(orgs)} organization(s) could not be exported, so no file "
            "was written:\n  " + "\n  ".join(failed)
        )
    return files, requests


def _over_limit(org: LiveOrg) -> str | None:
    from rovo_reconcile.app_limit import export_refusal
    from rovo_reconcile.plan import allowlist_value

    return export_refusal(allowlist_value(a) for a in org.state.ip_allowlists or ())


def write_new_files(files: Sequence[ExportedFile]) -> None:
    """Create every file whole; none is written if any already exists."""
    taken = [str(f.path) for f in files if f.path.exists() or f.path.is_symlink()]
    if taken:
        raise RovoError(
            "refusing to overwrite existing file(s): " + ", ".join(taken) + "; nothing was "
            "written (move them away, or use adopt to bring an existing policy up to date)"
        )
    for file in files:
        file.path.parent.mkdir(parents=True, exist_ok=True)
    for file in files:
        _create(file.path, file.text)


def _create(path: Path, text: str) -> None:
    """Write `text` to a new file at `path`: whole or not at all, never over another file."""
    mask = os.umask(0)
    os.umask(mask)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(tmp, 0o666 & ~mask)
        try:
            os.link(tmp, path)  # fails if the name exists, unlike a rename
        except FileExistsError as e:
            raise RovoError(f"{path} appeared while export ran; it was left as it is") from e
    finally:
        os.unlink(tmp)
