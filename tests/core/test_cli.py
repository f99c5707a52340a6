"""The storelens command line, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.schema import event_to_json
from tests.support.events import make_event
from tests.support.photos import photo, photo_bytes

ROOT = Path(__file__).resolve().parents[2]


def run(data: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORELENS_")}
    env.update(STORELENS_DATA_DIR=str(data), STORELENS_SECRET_KEY="cli-test")
    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_enroll_then_identify_names_the_right_people(data: Path) -> None:
    assert run(data, "enroll", "--name", "Barack Obama", str(photo("obama"))).returncode == 0
    done = run(data, "enroll", "--name", "Joe Biden", "--loyalty-id", "L-46", str(photo("biden")))
    assert done.returncode == 0 and "enrolled Joe Biden as cus_" in done.stdout

    out = run(
        data, "--json", "identify", str(photo("obama2")), str(photo("obama3")), str(photo("grace_hopper"))
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    names = [[f["name"] for f in item["faces"]] for item in report]
    assert names == [["Barack Obama"], ["Barack Obama"], [None]]
    assert report[0]["faces"][0]["band"] == "match"
    assert report[0]["faces"][0]["distance"] < 0.45
    assert report[2]["faces"][0]["band"] == "new"

    human = run(data, "identify", str(photo("obama2")))
    assert "Barack Obama (cus_" in human.stdout and "band=match" in human.stdout

    listed = json.loads(run(data, "--json", "customers", "list").stdout)
    assert sorted(c["name"] for c in listed) == ["Barack Obama", "Joe Biden"]


def test_identify_group_photo_reports_every_face(data: Path) -> None:
    out = run(data, "--json", "identify", str(photo("t1")))
    assert out.returncode == 0, out.stderr
    faces = json.loads(out.stdout)[0]["faces"]
    assert len(faces) == 6 and all(f["customer_id"] is None for f in faces)


def test_compare_exit_codes(data: Path) -> None:
    same = run(data, "compare", str(photo("obama")), str(photo("obama2")))
    assert same.returncode == 0 and "same person" in same.stdout
    diff = run(data, "--json", "compare", str(photo("obama")), str(photo("biden")))
    assert diff.returncode == 1 and json.loads(diff.stdout)["same_person"] is False
    assert json.loads(diff.stdout)["distance"] > 0.6


def test_bad_input_is_one_clear_line_and_nonzero(data: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "broken.jpg"
    truncated.write_bytes(photo_bytes("obama")[:3000])
    out = run(data, "enroll", "--name", "X", str(truncated))
    assert out.returncode == 65
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("storelens: error:")

    group = run(data, "enroll", "--name", "Crowd", str(photo("t1")))
    assert group.returncode == 65 and "6 faces found" in group.stderr

    missing = run(data, "identify", str(tmp_path / "nope.jpg"))
    assert missing.returncode == 65 and "no such file" in missing.stderr

    bad_setting = subprocess.run(
        [sys.executable, "-m", "core", "customers", "list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "STORELENS_DATA_DIR": str(data), "STORELENS_BAKEND": "aws"},
    )
    assert bad_setting.returncode == 78 and "did you mean STORELENS_BACKEND" in bad_setting.stderr


def test_ingest_and_approve_from_the_command_line(data: Path, tmp_path: Path) -> None:
    files = []
    for i, name in enumerate(("obama", "obama2", "biden")):
        path = tmp_path / f"event{i}.json"
        path.write_bytes(event_to_json(make_event(photo_bytes(name))))
        files.append(str(path))
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1}')
    out = run(data, "ingest", *files, str(bad))
    assert out.returncode == 65
    assert out.stdout.count("pending pid_") == 3
    assert "bad.json: missing field(s)" in out.stderr

    pending = json.loads(run(data, "--json", "approvals", "list").stdout)
    assert len(pending) == 2
    obama = max(pending, key=lambda p: p["face_count"])
    refused = run(data, "approvals", "approve", obama["pending_id"], "--name", "Barack Obama")
    assert refused.returncode == 65 and "consent is required" in refused.stderr
    ok = run(data, "approvals", "approve", obama["pending_id"], "--name", "Barack Obama", "--consent")
    assert ok.returncode == 0 and "approved cus_" in ok.stdout
    again = run(data, "approvals", "reject", obama["pending_id"])
    assert again.returncode == 75 and "already decided" in again.stderr

    customer_id = ok.stdout.split()[-1]
    erased = run(data, "erase", customer_id)
    assert erased.returncode == 65 and "--yes" in erased.stderr
    assert run(data, "erase", customer_id, "--yes").returncode == 0
    assert run(data, "--json", "customers", "list").stdout.strip() == "[]"
    assert run(data, "purge").returncode == 0


def test_a_token_for_one_pending_identity_cannot_decide_another(data: Path, tmp_path: Path) -> None:
    from core.bootstrap import build_services
    from core.settings import Settings

    files = []
    for name in ("obama", "biden"):
        path = tmp_path / f"{name}.json"
        path.write_bytes(event_to_json(make_event(photo_bytes(name))))
        files.append(str(path))
    assert run(data, "ingest", *files).returncode == 0
    services = build_services(Settings.from_env({}, data_dir=data, secret_key="cli-test"))
    a, b = sorted(p.pending_id for p in services.approvals.list_pending())
    token_a = services.approvals.signer.issue(a, "reject", 3600)
    services.close()
    refused = run(data, "approvals", "reject", b, "--token", token_a)
    assert refused.returncode != 0
    assert f"issued for {a}, not {b}" in refused.stderr and "Traceback" not in refused.stderr
    listed = json.loads(run(data, "--json", "approvals", "list").stdout)
    assert sorted(item["pending_id"] for item in listed) == [a, b]  # neither was decided
    assert run(data, "approvals", "reject", a, "--token", token_a).returncode == 0
