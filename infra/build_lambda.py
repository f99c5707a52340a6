"""Assemble ``infra/.build/`` for ``sam build``: one code folder, one dependency layer.

* ``.build/code/``: only what the Lambdas import (``core/`` without the local
  backend's heavy engine, ``infra/functions/``); every function's ``CodeUri``.
  No requirements file, so ``sam build`` copies it as is (a few hundred KB).
* ``.build/deps/requirements.txt``: the ``DependenciesLayer`` (``BuildMethod:
  python3.12``); ``sam build`` installs botocore, cryptography, Pillow... once,
  into one layer the five functions share, instead of five copies of ~65 MB.

    python infra/build_lambda.py
    sam build -t infra/template.yaml        # needs python3.12 on PATH, or --use-container
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
    """(Re)create ``out`` (``code/`` and ``deps/``) and return it."""
    if out.exists():
        shutil.rmtree(out)
    code, deps = out / "code", out / "deps"
    code.mkdir(parents=True)
    deps.mkdir()
    shutil.copytree(ROOT / "core", code / "core", ignore=lambda d, names: [n for n in names if n in SKIP])
    shutil.copytree(
        ROOT / "infra" / "functions",
        code / "infra" / "functions",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / "infra" / "requirements-lambda.txt", deps / "requirements.txt")
    return out


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
