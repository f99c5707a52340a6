"""Accountability documents follow the settings and the measured accuracy."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from core.consent import consent_notice
from core.privacy_docs import (
    DOCUMENTS,
    dpia_inputs,
    record_of_processing,
    second_layer_notice,
    signage_notice,
)
from core.settings import Settings


def _settings(**kw: object) -> Settings:
    return Settings.from_env(
        {}, privacy_controller="Corner Shop Ltd", privacy_contact="dpo@corner.example", **kw
    )


def test_documents_follow_mode_and_retention() -> None:
    review = _settings(pending_ttl_days=14)
    strict = _settings(privacy_mode="consent-first", customer_retention_days=90)
    assert "up to 14 days" in signage_notice(review) and "discarded at once" not in signage_notice(review)
    assert "discarded at once" in signage_notice(strict) and "90 days" in signage_notice(strict)
    assert "Corner Shop Ltd (dpo@corner.example)" in record_of_processing(strict)
    assert "| Retention | Customer photos/templates: 90 days" in record_of_processing(strict)
    # The second layer quotes the exact notice people consent to, with its version.
    notice = consent_notice(strict)
    assert f"Version `{notice.version}`" in second_layer_notice(strict)
    assert consent_notice(review).version != notice.version  # retention is part of the text
    assert "Amazon Web Services, region eu-central-1" in dpia_inputs(
        _settings(backend="aws", aws_region="eu-central-1"), Path("/nonexistent")
    )
    assert all(build(strict).startswith("# ") for _title, build in DOCUMENTS.values())


def test_dpia_reads_measured_accuracy(tmp_path: Path) -> None:
    s = _settings()
    missing = tmp_path / "accuracy.json"
    assert "**No measurement exists yet**" in dpia_inputs(s, missing)
    missing.write_text("{not json")
    assert "**No measurement exists yet**" in dpia_inputs(s, missing)
    # A hand-written flat file is shown as it is.
    missing.write_text(json.dumps({"false_match_rate": 0.001, "true_match_rate": 0.93, "dataset": "walkway"}))
    text = dpia_inputs(s, missing)
    assert (
        "- false_match_rate: 0.001" in text and "- dataset: walkway" in text and "No measurement" not in text
    )


def _bench_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "accuracy.py"
    spec = importlib.util.spec_from_file_location("bench_accuracy_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def test_the_figures_bench_accuracy_writes_are_what_the_dpia_quotes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = _bench_module(monkeypatch)
    pairs = bench.PairSet("clip tracks (all)", same=[0.30, 0.40, 0.50], different=[0.62, 0.80, 0.90, 0.95])
    out = tmp_path / "accuracy.json"
    args = argparse.Namespace(clip=Path("walkway-1080p.mp4"), every=2, min_face=40)
    bench.write_figures(
        out, "onnx", {"clip tracks (all)": pairs}, {"clip tracks (all)": bench.rates(pairs)}, args
    )
    record = json.loads(out.read_text())
    assert record["match_threshold"] == 0.55 and record["clip"] == "walkway-1080p.mp4"
    row = record["sets"]["clip tracks (all)"]
    # At similarity 0.55 (distance 0.45): two of three same-person pairs accepted, no stranger.
    assert (row["same_pairs"], row["different_pairs"], row["tar"], row["far"]) == (3, 4, 0.6667, 0.0)
    assert row["similarity_for_far0"] == 0.38
    text = dpia_inputs(_settings(), out)
    assert "No measurement" not in text
    assert "| clip tracks (all) | 3 | 4 | 66.7 % | 0.000 % | 0.38 |" in text
    assert "at match threshold 0.55" in text and "Run `bench/accuracy.py` again" not in text
    # Figures taken at another threshold than the running one say so.
    assert "Run `bench/accuracy.py` again" in dpia_inputs(_settings(match_threshold=0.6), out)
