"""A wheelhouse rebuilt from what this interpreter has installed, so pip can install
rovo-reconcile's dependencies offline (`PIP_NO_INDEX=1 PIP_FIND_LINKS=<dir>`).

Each installed distribution is zipped back into a wheel from the files its RECORD lists
(install-time files such as INSTALLER and scripts outside site-packages left out), named
by the first tag of its WHEEL file. Plus virtualenv's embedded setuptools wheel, which
the build of rovo-reconcile itself needs (`[build-system] requires`). A plain module.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
import shutil
import zipfile
from pathlib import Path

from packaging.requirements import Requirement

__all__ = ["build_wheelhouse"]

_INSTALL_TIME = {"INSTALLER", "REQUESTED", "direct_url.json"}


def _closure(root: str) -> list[metadata.Distribution]:
    """`root`'s installed runtime dependencies, transitively (no extras, markers honoured)."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [
        Requirement(r)
        for r in metadata.requires(root) or []
        if not Requirement(r).marker or Requirement(r).marker.evaluate({"extra": ""})  # type: ignore[union-attr]
    ]
    while todo:
        requirement = todo.pop()
        key = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if key in seen:
            continue
        dist = metadata.distribution(requirement.name)
        seen[key] = dist
        for text in dist.requires or []:
            inner = Requirement(text)
            if inner.marker is None or inner.marker.evaluate({"extra": ""}):
                todo.append(inner)
    return list(seen.values())


def _repack(dist: metadata.Distribution, out: Path) -> Path:
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    tags = [
        line.split(":", 1)[1].strip()
        for line in (dist.read_text("WHEEL") or "").splitlines()
        if line.startswith("Tag:")
    ]
    wheel = out / f"{name}-{dist.version}-{tags[0] if tags else 'py3-none-any'}.whl"
    base = Path(str(dist.locate_file("")))
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
        for file in dist.files or []:
            parts = file.parts
            if parts[0] == ".." or "__pycache__" in parts or file.name in _INSTALL_TIME:
                continue
            path = base / file
            if path.is_file():
                archive.write(path, file.as_posix())
    return wheel


def build_wheelhouse(out: Path, root: str = "rovo-reconcile") -> Path:
    """Wheels of `root`'s installed dependencies and of setuptools, in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    for dist in _closure(root):
        _repack(dist, out)
    import virtualenv.seed.wheels.embed as embed

    setuptools = sorted(Path(embed.__file__).parent.glob("setuptools-*.whl"))
    shutil.copy(setuptools[-1], out)
    return out
