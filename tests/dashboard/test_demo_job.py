"""The Demo page's background job: progress, stop, errors shown rather than lost."""

from __future__ import annotations

import threading
import time

from pages._ui import BackgroundJob


def _wait(job: BackgroundJob, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while job.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not job.running


def test_progress_and_result():
    job = BackgroundJob()

    def work(progress, stop):
        for i in range(5):
            progress((i + 1) / 5, f"step {i + 1}")
        return "done"

    assert job.start(work, "ann")
    _wait(job)
    assert (job.fraction, job.result, job.message, job.error) == (1.0, "done", "finished", None)


def test_stop_and_single_instance():
    job = BackgroundJob()
    started = threading.Event()

    def work(progress, stop):
        started.set()
        while not stop.is_set():
            time.sleep(0.01)
        return "stopped"

    assert job.start(work, "ann")
    started.wait(5)
    assert not job.start(work, "bob"), "a second job must not start while one runs"
    job.stop()
    _wait(job)
    assert job.message == "stopped" and job.started_by == "ann"


def test_error_is_kept():
    job = BackgroundJob()

    def work(progress, stop):
        raise RuntimeError("camera unplugged")

    job.start(work, "ann")
    _wait(job)
    assert job.error == "RuntimeError: camera unplugged" and job.message == "failed"
