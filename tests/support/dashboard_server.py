"""``streamlit run app.py`` on a free port over a tmp data dir, for browser tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.settings import TOOL_VARIABLES
from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def dashboard_server(data: Path, **settings: str) -> Iterator[str]:
    """Serve the dashboard over ``data`` (plus ``STORELENS_*`` ``settings``); yield its base URL.

    Only the tool variables of the caller's ``STORELENS_*`` environment pass
    through, so a developer's settings cannot leak into the test. The server's
    output goes to ``streamlit.log`` beside ``data`` and is shown if it fails to start.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORELENS_") or k in TOOL_VARIABLES}
    env.update(STORELENS_DATA_DIR=str(data), STORELENS_SECRET_KEY=TEST_SECRET, STORELENS_PUBLIC_URL=base)
    env.update(settings)
    log_path = data.parent / "streamlit.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true",
             "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start:\n{log_path.read_text()}")
                time.sleep(0.3)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
