"""Cognito token verification (local RSA key as the pool's JWKS), IoT config and
iot-data publishing (moto), and SES error translation."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from core.aws.cognito import CognitoVerifier
from core.errors import AuthError, BackendError, NotFoundError, PayloadTooLargeError, SettingsError
from tests.aws.moto_support import REGION, client, moto

POOL = "eu-west-1_TestPool"
CLIENT = "client-abc"
ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{POOL}"


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="kid-1", alg="RS256", use="sig")
    return {"key": key, "other": other, "jwks": {"keys": [jwk]}}


def _token(keys: dict[str, Any], *, key: str = "key", kid: str = "kid-1", **claims: Any) -> str:
    now = int(time.time())
    body = {
        "sub": "u-1",
        "iss": ISSUER,
        "iat": now,
        "exp": now + 600,
        "token_use": "id",
        "aud": CLIENT,
        "cognito:username": "alice",
        "email": "alice@example.com",
        "cognito:groups": ["approvers"],
    }
    body.update(claims)
    return jwt.encode(
        {k: v for k, v in body.items() if v is not None}, keys[key], algorithm="RS256", headers={"kid": kid}
    )


def _verifier(keys: dict[str, Any], fetched: list[str] | None = None) -> CognitoVerifier:
    def fetch(url: str) -> dict[str, Any]:
        if fetched is not None:
            fetched.append(url)
        return keys["jwks"]

    return CognitoVerifier(region=REGION, user_pool_id=POOL, client_id=CLIENT, fetch_jwks=fetch)


def test_valid_id_and_access_tokens(keys: dict[str, Any]) -> None:
    fetched: list[str] = []
    verifier = _verifier(keys, fetched)
    who = verifier.verify(_token(keys))
    assert (who.username, who.email, who.groups, who.token_use) == (
        "alice",
        "alice@example.com",
        ("approvers",),
        "id",
    )
    access = _token(keys, token_use="access", aud=None, client_id=CLIENT, username="alice")
    assert verifier.verify(access, token_use="access").username == "alice"
    assert fetched == [f"{ISSUER}/.well-known/jwks.json"]  # cached


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"iss": "https://cognito-idp.eu-west-1.amazonaws.com/other"}, "issuer"),
        ({"aud": "another-client"}, "another app client"),
        ({"token_use": "refresh"}, "token_use"),
        ({"token_use": None}, "invalid token"),
    ],
)
def test_rejected_claims(keys: dict[str, Any], claims: dict[str, Any], message: str) -> None:
    with pytest.raises(AuthError, match=message):
        _verifier(keys).verify(_token(keys, **claims))


def test_rejected_signatures_and_keys(keys: dict[str, Any]) -> None:
    verifier = _verifier(keys)
    with pytest.raises(AuthError, match="invalid token"):
        verifier.verify(_token(keys, key="other"))
    with pytest.raises(AuthError, match="unknown key"):
        verifier.verify(_token(keys, kid="rotated-away"))
    with pytest.raises(AuthError, match="malformed"):
        verifier.verify("not-a-jwt")
    with pytest.raises(AuthError, match="token_use"):
        verifier.verify(_token(keys), token_use="access")
    hs = jwt.encode(
        {"sub": "x"}, "secret-secret-secret-secret-32by", algorithm="HS256", headers={"kid": "kid-1"}
    )
    with pytest.raises(AuthError, match="algorithm"):
        verifier.verify(hs)


def test_verifier_needs_pool_and_client() -> None:
    with pytest.raises(AuthError):
        CognitoVerifier(region=REGION, user_pool_id="", client_id=CLIENT)


# ------------------------------------------------------------------------ IoT


def test_iot_mqtt_config_checks_files_and_builds_tls(tmp_path: Path) -> None:
    from core.aws.iot import IotMqttConfig

    with pytest.raises(NotFoundError, match="certificate"):
        IotMqttConfig.from_dir(tmp_path, endpoint="abc-ats.iot.eu-west-1.amazonaws.com", client_id="cam-1")
    with pytest.raises(SettingsError, match="STORELENS_IOT_ENDPOINT"):
        IotMqttConfig.from_dir(tmp_path, endpoint="", client_id="cam-1", check_files=False).check()
    cfg = IotMqttConfig.from_dir(
        tmp_path, endpoint="abc-ats.iot.eu-west-1.amazonaws.com", client_id="cam-1", check_files=False
    )
    kwargs = cfg.paho_kwargs()
    assert kwargs["port"] == 8883 and kwargs["tls"]["certfile"].endswith("certificate.pem.crt")
    assert cfg.topic_for("store-9") == "storelens/store-9/cam-1/faces"


def test_iot_data_publisher_publishes_schema_json_to_the_store_topic() -> None:
    import base64
    import io
    import uuid

    from PIL import Image

    from core.aws.iot import IotDataPublisher, describe_data_endpoint
    from core.schema import parse_event

    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, format="JPEG")
    doc = {
        "event_id": str(uuid.uuid4()),
        "schema_version": 1,
        "store_id": "store-1",
        "camera_id": "c",
        "zone": "z",
        "captured_at": "2026-11-23T10:00:00Z",
        "bbox": {"left": 0, "top": 0, "width": 50, "height": 50},
        "frame": {"width": 64, "height": 64},
        "detector": "ssd",
        "confidence": 0.9,
        "track_id": "t",
        "crop_jpeg_b64": base64.b64encode(buf.getvalue()).decode(),
    }
    event = parse_event(doc)
    with moto():
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.iotdata.models import iotdata_backends

        publisher = IotDataPublisher(client=client("iot-data"))
        publisher.publish(event)
        published = iotdata_backends[DEFAULT_ACCOUNT_ID][REGION].published_payloads
        [(topic, payload)] = published
        assert topic == "storelens/store-1/c/faces"
        assert parse_event(payload).event_id == event.event_id
        assert describe_data_endpoint(client=client("iot")).endswith("amazonaws.com")
        big = type(event)(**{**{f: getattr(event, f) for f in event.__slots__}, "crop_jpeg": b"x" * 200_000})
        with pytest.raises(PayloadTooLargeError):
            publisher.publish(big)


# ------------------------------------------------------------------------ SES


def test_ses_rejection_becomes_backend_error() -> None:
    from core.aws.ses import SesNotifier
    from core.ports import OutgoingMail

    mail = OutgoingMail(
        to=("a@example.com",),
        subject="s",
        subject_id="pid_1",
        mime=b"From: nobody@unverified.example\r\nTo: a@example.com\r\nSubject: s\r\n\r\nhi\r\n",
    )
    with moto():
        notifier = SesNotifier(client=client("ses"), source="nobody@unverified.example")
        with pytest.raises(BackendError, match="SES refused"):
            notifier.send(mail)


def test_build_aws_points_iot_data_at_the_account_endpoint(tmp_path: Path) -> None:
    from core.aws.backend import build_aws
    from core.aws.iot import IotDataPublisher
    from core.errors import AuthError
    from core.settings import Settings

    settings = Settings.from_env(
        {},
        backend="aws",
        data_dir=tmp_path,
        s3_bucket="b",
        state_machine_arn="arn:aws:states:eu-west-1:1:stateMachine:s",
        iot_endpoint="abc123-ats.iot.eu-west-1.amazonaws.com",
    )
    parts = build_aws(settings)
    assert isinstance(parts.iot_publisher, IotDataPublisher)
    assert parts.iot_publisher._endpoint_url == "https://abc123-ats.iot.eu-west-1.amazonaws.com"
    # Without a Cognito pool nobody can sign in, and the approval API has no verifier.
    assert parts.token_verifier is None
    with pytest.raises(AuthError, match="STORELENS_COGNITO_USER_POOL_ID"):
        parts.authenticator.login("ann", "password")
    with pytest.raises(SettingsError, match="STORELENS_S3_BUCKET"):
        build_aws(Settings.from_env({}, backend="aws", data_dir=tmp_path))
    with pytest.raises(TypeError, match="unknown client"):
        build_aws(settings, s4=object())


# -------------------------------------------------------------- link secret


def test_lambda_settings_read_the_link_key_from_secrets_manager_and_cache_it() -> None:
    from core.aws.secrets import forget_cached_keys
    from core.errors import SettingsError as _SettingsError
    from infra.functions.runtime import settings_from_env

    with moto():
        sm = client("secretsmanager")
        arn = sm.create_secret(Name="link", SecretString='{"key": "k-1"}')["ARN"]
        env = {"STORELENS_BACKEND": "aws", "STORELENS_AWS_REGION": REGION, "LINK_SECRET_ARN": arn}
        forget_cached_keys()
        assert settings_from_env(env, secretsmanager=sm).secret_key == "k-1"
        sm.put_secret_value(SecretId=arn, SecretString='{"key": "k-2"}')
        assert settings_from_env(env, secretsmanager=sm).secret_key == "k-1"  # cached
        forget_cached_keys()
        assert settings_from_env(env, secretsmanager=sm).secret_key == "k-2"  # a new container
        bad = sm.create_secret(Name="bad", SecretString="not json")["ARN"]
        with pytest.raises(_SettingsError, match="'key'"):
            settings_from_env({**env, "LINK_SECRET_ARN": bad}, secretsmanager=sm)
        forget_cached_keys()


def test_password_sign_in_names_challenges_it_cannot_answer() -> None:
    """MFA is a clear message, not a crash; NEW_PASSWORD_REQUIRED carries the session."""
    from botocore.stub import Stubber

    from core.aws.cognito import NewPasswordRequiredError, password_sign_in

    idp = client("cognito-idp")
    stub = Stubber(idp)
    params = {
        "AuthFlow": "USER_PASSWORD_AUTH",
        "ClientId": CLIENT,
        "AuthParameters": {"USERNAME": "ann", "PASSWORD": "pw"},
    }
    stub.add_response("initiate_auth", {"ChallengeName": "SOFTWARE_TOKEN_MFA", "Session": "s" * 20}, params)
    stub.add_response(
        "initiate_auth", {"ChallengeName": "NEW_PASSWORD_REQUIRED", "Session": "t" * 20}, params
    )
    with stub:
        with pytest.raises(AuthError, match="multi-factor authentication"):
            password_sign_in(idp, CLIENT, "ann", "pw")
        with pytest.raises(NewPasswordRequiredError) as info:
            password_sign_in(idp, CLIENT, "ann", "pw")
    assert info.value.session == "t" * 20 and info.value.username == "ann"
