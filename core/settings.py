"""Typed settings read from ``STORELENS_*`` environment variables.

Every field of :class:`Settings` maps to ``STORELENS_<FIELD_NAME_UPPER>``.
Unknown ``STORELENS_*`` variables are rejected with a hint, so a typo such as
``STORELENS_MATCH_TRESHOLD`` fails loudly instead of silently using a default.

>>> Settings.from_env({"STORELENS_BACKEND": "local", "STORELENS_DATA_DIR": "/tmp/x"}).backend
'local'
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import SettingsError

PREFIX = "STORELENS_"
#: ``STORELENS_*`` variables read by the project's scripts and tests, not by
#: the product; they are allowed through instead of being refused as typos.
TOOL_VARIABLES = frozenset(
    {"STORELENS_PHOTO_CACHE", "STORELENS_CACHE", "STORELENS_VENV", "STORELENS_DEMO_PASSWORD"}
)
BACKENDS = ("local", "aws")
#: ``review``: unknown faces are kept (crops, templates) for a human to approve,
#: which is also when consent is recorded. ``consent-first``: only people who
#: enrolled with consent are recognised; everyone else is an anonymous sighting.
PRIVACY_MODES = ("review", "consent-first")
PROJECT_DIR = Path(__file__).resolve().parent.parent


def _default_data_dir() -> Path:
    return PROJECT_DIR / "data"


@dataclass(frozen=True)
class Settings:
    """All runtime configuration. Defaults select the embedded local backend."""

    backend: str = "local"
    data_dir: Path = field(default_factory=_default_data_dir)
    store_id: str = "store-1"
    collection_id: str = "storelens-faces"

    # Recognition policy, on the common similarity scale (1 - dlib distance
    # locally). Measured on the package photos: the same person sits at
    # distance 0.24-0.44 (similarity 0.56-0.76), different people at 0.64-0.98
    # (0.02-0.36). MATCH at >= 0.55 accepts every same-person pair we measured
    # with margin to the nearest stranger; the review band 0.42-0.55 catches
    # poor crops of known people for a human instead of guessing.
    match_threshold: float = 0.55
    review_threshold: float = 0.42
    # An unknown face joins an existing pending identity at this similarity.
    cluster_threshold: float = 0.50
    # A customer seen again within this many seconds extends the same visit.
    visit_gap_seconds: int = 1800

    # Input limits (FaceEvent schema v1).
    max_crop_bytes: int = 1_000_000
    min_face_px: int = 40
    # Crops declaring more pixels than this in their JPEG header are refused
    # before decoding (a 300 KB file can declare 9000x9000).
    max_image_pixels: int = 4_000_000

    # Approvals and privacy.
    secret_key: str = ""
    token_ttl_hours: int = 72
    pending_ttl_days: int = 30
    # Dead letters keep reason and metadata; the image in them goes after
    # this many hours, and the log is capped in count and payload bytes.
    dead_letter_image_hours: int = 72
    dead_letter_max_count: int = 1000
    dead_letter_max_bytes: int = 20_000_000
    # Long-running local processes (dashboard, ingest workers) purge expired
    # pending identities this often; 0 turns it off.
    purge_interval_seconds: int = 3600
    public_url: str = "http://localhost:8501"
    # The store's IANA time zone: every day, hour and time the dashboard shows is in it.
    timezone: str = "UTC"
    approval_recipients: str = "approvals@storelens.local"
    mail_sender: str = "storelens@storelens.local"
    # Consent-first mode and retention (see docs/privacy.md).
    privacy_mode: str = "review"
    # A customer's photos and templates are deleted this long after their last visit.
    customer_retention_days: int = 365
    # Customer records (name, e-mail, loyalty id) are deleted this long after the last
    # visit (never before their photos: the larger of the two retention periods applies);
    # their visits stay in footfall as anonymous sightings (docs/privacy.md).
    customer_record_retention_days: int = 730
    # Raw anonymous sightings are rolled up into per-hour, per-zone counts after this long.
    anonymous_retention_days: int = 90
    # AWS: keep the consented customers' templates in the bucket for edge agents with
    # unmatched = "anonymous" (core/gallery.py); locally the edge reads the store.
    edge_gallery: bool = False
    # Who is responsible for the processing, for the generated notices (core/privacy_docs.py).
    privacy_controller: str = "the store operator"
    privacy_contact: str = ""

    # Edge / transport.
    # Crops the edge sends per track (the K best, diverse ones; 1..10).
    crops_per_track: int = 5
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883

    # AWS backend.
    aws_region: str = "eu-west-1"
    s3_bucket: str = ""
    dynamodb_table_prefix: str = "storelens"
    state_machine_arn: str = ""
    ses_sender: str = ""
    cognito_user_pool_id: str = ""
    cognito_client_id: str = ""
    iot_endpoint: str = ""
    aws_endpoint_url: str = ""
    s3_endpoint_url: str = ""
    dynamodb_endpoint_url: str = ""
    rekognition_endpoint_url: str = ""
    stepfunctions_endpoint_url: str = ""
    ses_endpoint_url: str = ""
    iot_endpoint_url: str = ""
    cognito_endpoint_url: str = ""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise SettingsError(
                f"STORELENS_BACKEND={self.backend!r} is not a backend; use one of: {', '.join(BACKENDS)}"
            )
        if not 0.0 <= self.review_threshold <= self.match_threshold <= 1.0:
            raise SettingsError(
                "thresholds must satisfy 0 <= STORELENS_REVIEW_THRESHOLD <= STORELENS_MATCH_THRESHOLD <= 1 "
                f"(got review={self.review_threshold}, match={self.match_threshold})"
            )
        if self.privacy_mode not in PRIVACY_MODES:
            raise SettingsError(
                f"STORELENS_PRIVACY_MODE={self.privacy_mode!r} is not a privacy mode; "
                f"use one of: {', '.join(PRIVACY_MODES)}"
            )
        if self.customer_retention_days < 1:
            raise SettingsError("STORELENS_CUSTOMER_RETENTION_DAYS must be at least 1")
        if self.customer_record_retention_days < 1:
            raise SettingsError("STORELENS_CUSTOMER_RECORD_RETENTION_DAYS must be at least 1")
        if self.anonymous_retention_days < 1:
            raise SettingsError("STORELENS_ANONYMOUS_RETENTION_DAYS must be at least 1")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(
                f"STORELENS_TIMEZONE={self.timezone!r} is not a time zone name (e.g. Europe/Madrid)"
            ) from exc
        if self.min_face_px < 1 or self.max_crop_bytes < 1:
            raise SettingsError("STORELENS_MIN_FACE_PX and STORELENS_MAX_CROP_BYTES must be positive")
        if not 1 <= self.crops_per_track <= 10:
            raise SettingsError("STORELENS_CROPS_PER_TRACK must be 1..10")
        for name in (
            "token_ttl_hours",
            "pending_ttl_days",
            "dead_letter_image_hours",
            "dead_letter_max_count",
            "dead_letter_max_bytes",
            "max_image_pixels",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(
                    f"STORELENS_{name.upper()} must be a positive number, got {getattr(self, name)}"
                )
        if self.purge_interval_seconds < 0:
            raise SettingsError("STORELENS_PURGE_INTERVAL_SECONDS must be 0 (off) or positive")

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``) plus overrides.

        Raises :class:`SettingsError` for unknown ``STORELENS_*`` keys or values
        that do not parse as the field's type.
        """
        env = os.environ if environ is None else environ
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in env.items():
            if not key.startswith(PREFIX) or key in TOOL_VARIABLES:
                continue
            name = key[len(PREFIX) :].lower()
            if name not in known:
                hint = difflib.get_close_matches(name, known, n=1)
                suggestion = f"; did you mean {PREFIX}{hint[0].upper()}?" if hint else ""
                raise SettingsError(f"unknown setting {key}{suggestion}")
            values[name] = _parse(key, raw, known[name])
        for name, value in overrides.items():
            if name not in known:
                raise SettingsError(f"unknown setting {name!r}")
            values[name] = value
        if "data_dir" in values:
            values["data_dir"] = Path(values["data_dir"]).expanduser()
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def endpoint_for(self, service: str) -> str | None:
        """The endpoint override for an AWS service, falling back to the global one."""
        specific = getattr(self, f"{service}_endpoint_url", "")
        return specific or self.aws_endpoint_url or None

    def resolved_secret(self) -> str:
        """The HMAC secret: the setting, else one persisted in the data dir.

        A generated secret is written with mode 0600 so links survive restarts.
        """
        if self.secret_key:
            return self.secret_key
        path = Path(self.data_dir) / "secret.key"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        return value


def _parse(key: str, raw: str, f: dataclasses.Field[Any]) -> Any:
    kind = f.type if not isinstance(f.type, str) else _resolve(f.type)
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is Path:
            return Path(raw)
        return raw
    except ValueError as exc:
        name = getattr(kind, "__name__", str(kind))
        raise SettingsError(f"{key}={raw!r} is not a valid {name}") from exc


def _resolve(annotation: str) -> Any:
    # ``from __future__ import annotations`` makes field types strings.
    return {"str": str, "int": int, "float": float, "bool": bool, "Path": Path}.get(annotation, str)
