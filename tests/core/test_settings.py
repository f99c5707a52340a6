from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import SettingsError
from core.settings import Settings


def test_defaults_select_the_local_backend_and_a_project_data_dir() -> None:
    s = Settings.from_env({})
    assert s.backend == "local"
    assert s.data_dir == Path(__file__).resolve().parents[2] / "data"
    assert s.review_threshold < s.match_threshold


def test_values_are_parsed_to_their_types() -> None:
    s = Settings.from_env(
        {"STORELENS_MATCH_THRESHOLD": "0.6", "STORELENS_MQTT_PORT": "1884", "STORELENS_DATA_DIR": "/tmp/x"}
    )
    assert s.match_threshold == 0.6
    assert s.mqtt_port == 1884
    assert s.data_dir == Path("/tmp/x")


def test_unknown_key_is_rejected_with_a_suggestion() -> None:
    with pytest.raises(SettingsError, match="did you mean STORELENS_MATCH_THRESHOLD"):
        Settings.from_env({"STORELENS_MATCH_TRESHOLD": "0.5"})


def test_other_environment_variables_are_ignored() -> None:
    assert Settings.from_env({"HOME": "/root", "PATH": "/bin"}).backend == "local"
    # The scripts' own variables are not settings and not typos either.
    assert (
        Settings.from_env({"STORELENS_PHOTO_CACHE": "/tmp/c", "STORELENS_VENV": ".venv"}).backend == "local"
    )


def test_bad_values_are_rejected() -> None:
    with pytest.raises(SettingsError, match="STORELENS_MQTT_PORT='abc' is not a valid int"):
        Settings.from_env({"STORELENS_MQTT_PORT": "abc"})
    with pytest.raises(SettingsError, match="not a backend; use one of: local, aws"):
        Settings.from_env({"STORELENS_BACKEND": "gcp"})
    with pytest.raises(SettingsError, match="thresholds must satisfy"):
        Settings.from_env({"STORELENS_REVIEW_THRESHOLD": "0.9"})


def test_generated_secret_is_persisted_privately(tmp_path: Path) -> None:
    s = Settings.from_env({}, data_dir=tmp_path)
    first = s.resolved_secret()
    assert first == Settings.from_env({}, data_dir=tmp_path).resolved_secret()
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600


def test_endpoint_overrides_fall_back_to_the_global_one() -> None:
    s = Settings.from_env(
        {"STORELENS_AWS_ENDPOINT_URL": "http://127.0.0.1:5000", "STORELENS_S3_ENDPOINT_URL": "http://s3:9000"}
    )
    assert s.endpoint_for("s3") == "http://s3:9000"
    assert s.endpoint_for("dynamodb") == "http://127.0.0.1:5000"
    assert Settings.from_env({}).endpoint_for("s3") is None
