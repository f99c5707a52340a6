"""Demo: fill the store with demo data, or replay a video through the edge pipeline."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import streamlit as st

from core.store_layout import DEFAULT_CONFIG, load_store_config
from pages import _ui

_ui.page_guard()

st.title("Demo")
services = _ui.services()
job = _ui.demo_job()
can_run = _ui.allowed("run_demo")
data_dir = Path(services.settings.data_dir)

cameras = {"cam-entrance": "entrance"}
if DEFAULT_CONFIG.exists():
    cameras = {c.camera_id: c.zone for c in load_store_config().cameras} or cameras


def demo_data(days: int, force: bool) -> Any:
    from simulator.demo import build_demo

    def run(progress: Any, stop: threading.Event) -> Any:
        return build_demo(services, days=days, force=force, progress=progress, stop=stop)

    return run


def video_replay(source: str, camera: str, zone: str) -> Any:
    from deeplens_lambda.publishers import InProcessPublisher
    from simulator.replay import replay

    def run(progress: Any, stop: threading.Event) -> Any:
        if source == "synthetic":
            from simulator.synth import render_clip, walk_script

            progress(0.0, "rendering a synthetic clip of walking customers")
            path = data_dir / "demo" / "walk.mp4"
            if not path.exists():
                render_clip(path, walk_script(["obama", "grace", "biden", "ana", "dev"]))
            video = str(path)
        else:
            video = source

        def on_frame(p: Any) -> None:
            fraction = p.frame / p.total if p.total else 0.0
            progress(fraction, f"frame {p.frame}/{p.total or '?'} · {p.events} faces sent · {p.fps:.0f} fps")

        publisher = InProcessPublisher(services.ingest, source="dashboard-demo")
        return replay(
            video,
            publisher,
            store_id=services.settings.store_id,
            camera_id=camera,
            zone=zone,
            progress=on_frame,
            stop=stop,
        )

    return run


with st.container(border=True):
    st.subheader("Demo store data")
    st.caption(
        "Enrols a regular, replays synthetic entrance clips of real face photos for each simulated "
        "day through the edge pipeline, approves two people, adds zone traffic and POS sales."
    )
    days = st.slider("Days to simulate", 3, 42, 21, key="demo_days")
    force = st.checkbox("Add another round even if demo data exists", key="demo_force")
    if st.button("Build demo data", key="demo_build", type="primary", disabled=not can_run or job.running):
        job.start(demo_data(days, force), _ui.actor())
        st.rerun()

with st.container(border=True):
    st.subheader("Replay a video")
    source = st.radio(
        "Video",
        ["synthetic", "upload"],
        horizontal=True,
        key="demo_source",
        format_func={
            "synthetic": "Synthetic walk-through (bundled photos)",
            "upload": "Upload a video",
        }.__getitem__,
    )
    upload = None
    if source == "upload":
        upload = st.file_uploader("Video file", type=["mp4", "avi", "mov", "mkv"], key="demo_upload")
    camera = st.selectbox("Camera", list(cameras), key="demo_camera")
    if st.button(
        "Start replay",
        key="demo_replay",
        disabled=not can_run or job.running or (source == "upload" and upload is None),
    ):
        video = "synthetic"
        if upload is not None:
            target = data_dir / "demo" / "uploads" / Path(upload.name).name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(upload.getvalue())
            video = str(target)
        job.start(video_replay(video, camera, cameras[camera]), _ui.actor())
        st.rerun()

if not can_run:
    st.caption("Viewers cannot start the demo.")


@st.fragment(run_every=1 if job.running else None)
def status() -> None:
    _ui.fragment_guard()
    if job.thread is None:
        return
    with st.container(border=True):
        st.subheader("Progress")
        st.progress(job.fraction, text=job.message or "")
        if job.running:
            st.caption(f"started by {job.started_by}")
            if st.button("Stop", key="demo_stop", icon=":material/stop:", disabled=not can_run):
                job.stop()
        elif job.error:
            st.error(job.error)
        elif job.result is not None:
            lines = getattr(job.result, "lines", None)
            st.success("Done" + (" (stopped early)" if job.stop_event.is_set() else ""))
            if callable(lines):
                st.code("\n".join(lines()), language=None)
    if not job.running and st.session_state.get("demo_was_running"):
        st.session_state["demo_was_running"] = False
        st.rerun()  # the whole page: re-enable the start buttons
    st.session_state["demo_was_running"] = job.running


status()
