"""Assemble ``infra/.build/``: the code folder every function in template.yaml uses.

It holds only what the Lambdas import (``core/`` without the local backend's
heavy engine, ``infra/functions/``) plus ``requirements.txt`` for ``sam build``,
which installs the dependencies for the Lambda platform::

    python infra/build_lambda.py
    sam build -t infra/template.yaml
    sam deploy --guided
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "infra" / ".build"
# The embedded backend's engine and dashboard-only modules never run in Lambda.
SKIP = {"__pycache__", "local"}


def build(out: Path = OUT) -> Path:
    """(Re)create ``out`` and return it."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copytree(ROOT / "core", out / "core", ignore=lambda d, names: [n for n in names if n in SKIP])
    shutil.copytree(
        ROOT / "infra" / "functions",
        out / "infra" / "functions",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / "infra" / "requirements-lambda.txt", out / "requirements.txt")
    return out


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
