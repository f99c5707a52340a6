"""``python -m simulator``: replay video through the edge pipeline, build demo data.

Examples::

    python -m simulator replay store.mp4 --camera cam-entrance --zone entrance --speed max
    python -m simulator replay rtsp://10.0.0.5:8554/cam1 --backend aws
    python -m simulator replay 0 --mqtt 127.0.0.1:1883      # webcam -> MQTT broker (spooled)
    python -m simulator demo                                 # fill the local store with demo data
    python -m simulator render clip.mp4 --people obama,biden,grace
    python -m simulator floorplan                            # redraw config/floorplan.png
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _services(backend: str, data_dir: str | None) -> Any:
    from core.bootstrap import build_services
    from core.settings import Settings

    overrides: dict[str, Any] = {"backend": backend}
    if data_dir:
        overrides["data_dir"] = data_dir
    services = build_services(Settings.from_env(os.environ, **overrides))
    if services.purges_in_process:  # a long-running replay purges expired items like the dashboard
        services.privacy.start_auto_purge()
    return services


def _edge_options(args: argparse.Namespace, settings: Any) -> dict[str, Any]:
    """Edge settings: the flag, else ``STORELENS_*``, else the store.toml camera, else the default.

    ``settings`` is the backend's :class:`core.settings.Settings` when there is
    one (it validates ``STORELENS_*``); with ``--mqtt`` they are read here.
    """
    from core.settings import Settings
    from deeplens_lambda.config import load_store_config
    from deeplens_lambda.detectors import DEFAULT_DETECTOR

    if settings is None:
        settings = Settings.from_env(os.environ)
    camera = None
    with contextlib.suppress(KeyError):  # a camera not in the file uses the defaults
        camera = load_store_config(args.config).camera(args.camera)
    env = os.environ

    def pick(flag: Any, env_key: str | None, from_settings: Any, from_camera: Any, default: Any) -> Any:
        if flag is not None:
            return flag
        if env_key is not None and env_key in env:
            return from_settings
        if from_camera is not None:
            return from_camera
        return default

    return {
        "detector": pick(args.detector, None, None, camera.detector if camera else None, DEFAULT_DETECTOR),
        "every": pick(args.every, None, None, camera.every if camera else None, 3),
        "min_face_px": pick(
            args.min_face_px,
            "STORELENS_MIN_FACE_PX",
            settings.min_face_px,
            camera.min_face_px if camera else None,
            settings.min_face_px,
        ),
        "crops_per_track": pick(
            args.crops_per_track,
            "STORELENS_CROPS_PER_TRACK",
            settings.crops_per_track,
            camera.crops_per_track if camera else None,
            settings.crops_per_track,
        ),
    }


def _cmd_replay(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from deeplens_lambda.publishers import InProcessPublisher, MqttTransport, SpoolingPublisher
    from deeplens_lambda.spool import Spool
    from simulator.replay import ReplayProgress, replay

    services = None
    if args.mqtt:
        host, _, port = args.mqtt.partition(":")
        spool_path = Path(args.spool or Path.home() / ".cache" / "storelens" / f"spool-{args.camera}.db")
        publisher: Any = SpoolingPublisher(MqttTransport(host, int(port or 1883)), Spool(spool_path))
    else:
        services = _services(args.backend, args.data_dir)
        publisher = InProcessPublisher(services.ingest, source="simulator")
    bar = tqdm(unit="frame", dynamic_ncols=True, desc=f"replay {args.camera}")

    def progress(p: ReplayProgress) -> None:
        if p.total and bar.total != p.total:
            bar.total = p.total
        bar.update(p.frame - bar.n)
        bar.set_postfix(events=p.events, refresh=False)

    store = args.store or (services.settings.store_id if services else "store-1")
    edge = _edge_options(args, services.settings if services else None)
    gate = None
    if args.unmatched == "anonymous":
        from core.settings import Settings
        from deeplens_lambda.consent_gate import gate_for

        settings = services.settings if services else Settings.from_env()
        # Share the loaded engine with the local backend instead of loading it twice.
        gate = gate_for(
            settings, embedder=services.faces if services and settings.backend == "local" else None
        )
    try:
        summary = replay(
            args.source,
            publisher,
            store_id=store,
            camera_id=args.camera,
            zone=args.zone,
            every=edge["every"],
            detector=edge["detector"],
            detector_options={"downscale": args.downscale} if args.downscale is not None else None,
            min_face_px=edge["min_face_px"],
            crops_per_track=edge["crops_per_track"],
            speed=args.speed,
            progress=progress,
            gate=gate,
        )
    finally:
        bar.close()
        publisher.close()
        if services is not None:
            services.close()
    print("\n".join(summary.lines()))
    if args.mqtt:
        print(f"published        {publisher.sent} via MQTT")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from simulator.demo import build_demo

    services = _services("local", args.data_dir)
    bar = tqdm(total=100, unit="%", desc="demo", dynamic_ncols=True)

    def progress(fraction: float, message: str) -> None:
        bar.set_description(f"demo: {message}"[:60])
        bar.update(round(fraction * 100) - bar.n)

    try:
        report = build_demo(
            services, days=args.days, customers=args.customers, force=args.force, progress=progress
        )
    finally:
        bar.close()
        services.close()
    print("\n".join(report.lines()))
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from simulator.synth import PEOPLE, render_clip, walk_script

    people = [p for p in args.people.split(",") if p]
    unknown = [p for p in people if p not in PEOPLE]
    if unknown:
        print(f"unknown people: {', '.join(unknown)}; known: {', '.join(PEOPLE)}", file=sys.stderr)
        return 2
    script = walk_script(people, duration=args.duration)
    clip = render_clip(args.output, script, seconds=args.seconds, fps=args.fps)
    print(f"wrote {clip.path}: {clip.frames} frames at {clip.fps:g} fps, people: {', '.join(people)}")
    return 0


def _cmd_floorplan(args: argparse.Namespace) -> int:
    from deeplens_lambda.config import draw_floor_plan, load_store_config

    print(draw_floor_plan(load_store_config(args.config), args.output))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulator", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    rp = sub.add_parser("replay", help="run a video file, RTSP URL or webcam index through the edge pipeline")
    rp.add_argument("source", help="video file, rtsp://... URL, or webcam index such as 0")
    rp.add_argument("--camera", default="cam-entrance")
    rp.add_argument("--zone", default="entrance")
    rp.add_argument("--store", default=None, help="store id (default: the backend's STORELENS_STORE_ID)")
    rp.add_argument("--speed", choices=("realtime", "max"), default="max")
    rp.add_argument("--backend", choices=("local", "aws"), default="local")
    rp.add_argument("--data-dir", default=None, help="local backend data dir (default STORELENS_DATA_DIR)")
    rp.add_argument(
        "--every",
        type=int,
        default=None,
        help="run the detector on every Nth frame (default: store.toml or 3)",
    )
    rp.add_argument(
        "--detector",
        default=None,
        choices=("yunet", "hog", "mxnet"),
        help="face detector (default: store.toml or yunet; hog where yuface cannot be installed)",
    )
    rp.add_argument(
        "--min-face-px",
        type=int,
        default=None,
        help="smallest face to find, camera pixels (default: STORELENS_MIN_FACE_PX, store.toml or 40)",
    )
    rp.add_argument(
        "--crops-per-track",
        type=int,
        default=None,
        help="crops sent per person (default: STORELENS_CROPS_PER_TRACK, store.toml or 5)",
    )
    rp.add_argument(
        "--downscale", type=float, default=None, help="hog only: detector input scale (default 0.5)"
    )
    rp.add_argument(
        "--unmatched",
        choices=("send", "anonymous"),
        default="send",
        help="anonymous: send crops only of consented customers the edge can match; "
        "everyone else leaves as an anonymous sighting (docs/edge.md)",
    )
    rp.add_argument("--config", default=None, help="store config (default config/store.toml)")
    rp.add_argument(
        "--mqtt",
        default=None,
        metavar="HOST:PORT",
        help="publish to an MQTT broker (spooled on disk) instead of in-process",
    )
    rp.add_argument("--spool", default=None, help="spool file for --mqtt")
    rp.set_defaults(func=_cmd_replay)

    dm = sub.add_parser("demo", help="fill the local backend with eight weeks of demo data")
    dm.add_argument("--days", type=int, default=56, help="days of history (default: eight weeks)")
    dm.add_argument("--customers", type=int, default=300, help="synthetic customers (~17 store visits each)")
    dm.add_argument("--data-dir", default=None)
    dm.add_argument("--force", action="store_true", help="add another round even if demo data exists")
    dm.set_defaults(func=_cmd_demo)

    rn = sub.add_parser("render", help="render a synthetic store clip from packaged face photos")
    rn.add_argument("output")
    rn.add_argument("--people", default="obama,biden,grace")
    rn.add_argument("--duration", type=float, default=3.0, help="seconds each person is in view")
    rn.add_argument("--seconds", type=float, default=None)
    rn.add_argument("--fps", type=float, default=15.0)
    rn.set_defaults(func=_cmd_render)

    fp = sub.add_parser("floorplan", help="draw the floor-plan PNG from the store config")
    fp.add_argument("--config", default=None)
    fp.add_argument("--output", default=None)
    fp.set_defaults(func=_cmd_floorplan)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from core.errors import StoreLensError

    try:
        return int(args.func(args))
    except (StoreLensError, FileNotFoundError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 1))


if __name__ == "__main__":
    sys.exit(main())
