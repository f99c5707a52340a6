"""Accountability documents follow the settings and the measured accuracy."""

from __future__ import annotations

import json
from pathlib import Path

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
    assert "Not measured yet" in dpia_inputs(s, missing)
    missing.write_text(json.dumps({"false_match_rate": 0.001, "true_match_rate": 0.93, "dataset": "walkway"}))
    text = dpia_inputs(s, missing)
    assert "- false_match_rate: 0.001" in text and "- dataset: walkway" in text and "Not measured" not in text
