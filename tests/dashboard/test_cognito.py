"""AWS mode login: Cognito USER_PASSWORD_AUTH under moto, ID token verified with PyJWT.

moto signs its tokens with the key pair it ships (``jwks-public.json.gz``);
the verifier gets that JWKS instead of fetching the pool's URL.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from core.auth import CognitoAuthenticator, LoginRateLimiter
from core.errors import AuthError
from core.settings import Settings


def _moto_jwks(url: str) -> dict:
    """moto's published key set, instead of fetching the pool's URL."""
    import moto.cognitoidp

    path = Path(moto.cognitoidp.__file__).parent / "resources" / "jwks-public.json.gz"
    return json.loads(gzip.decompress(path.read_bytes()))


@pytest.fixture
def cognito(tmp_path):
    with mock_aws():
        client = boto3.client("cognito-idp", region_name="eu-west-1")
        pool = client.create_user_pool(PoolName="storelens")["UserPool"]["Id"]
        app = client.create_user_pool_client(
            UserPoolId=pool, ClientName="dashboard", ExplicitAuthFlows=["USER_PASSWORD_AUTH"]
        )
        client_id = app["UserPoolClient"]["ClientId"]
        for name, group in (("alice", "admin"), ("victor", None)):
            client.admin_create_user(UserPoolId=pool, Username=name, MessageAction="SUPPRESS")
            client.admin_set_user_password(
                UserPoolId=pool, Username=name, Password="Passw0rd!x", Permanent=True
            )
            if group:
                client.create_group(GroupName=group, UserPoolId=pool)
                client.admin_add_user_to_group(UserPoolId=pool, Username=name, GroupName=group)
        settings = Settings.from_env(
            {},
            backend="aws",
            data_dir=tmp_path,
            aws_region="eu-west-1",
            cognito_user_pool_id=pool,
            cognito_client_id=client_id,
        )
        yield settings, client


def _auth(settings, client, **kw):
    return CognitoAuthenticator(settings, client=client, fetch_jwks=_moto_jwks, **kw)


def test_cognito_groups_map_to_roles(cognito):
    settings, client = cognito
    auth = _auth(settings, client)
    assert auth.login("alice", "Passw0rd!x").role == "admin"
    assert auth.login("victor", "Passw0rd!x").role == "viewer"


def test_cognito_wrong_password_is_rate_limited(cognito):
    settings, client = cognito
    auth = _auth(settings, client, limiter=LoginRateLimiter(max_failures=2, window_seconds=60))
    for _ in range(2):
        with pytest.raises(AuthError, match="wrong user name or password"):
            auth.login("alice", "nope-nope")
    with pytest.raises(AuthError, match="too many"):
        auth.login("alice", "Passw0rd!x")


def test_token_for_another_client_is_refused(cognito):
    settings, client = cognito
    token = client.initiate_auth(
        AuthFlow="USER_PASSWORD_AUTH",
        ClientId=settings.cognito_client_id,
        AuthParameters={"USERNAME": "alice", "PASSWORD": "Passw0rd!x"},
    )
    id_token = token["AuthenticationResult"]["IdToken"]
    other = CognitoAuthenticator(
        settings.with_(cognito_client_id="someone-else"), client=client, fetch_jwks=_moto_jwks
    )
    with pytest.raises(AuthError, match="invalid sign-in token"):
        other.verify_id_token(id_token)
    access = token["AuthenticationResult"]["AccessToken"]
    with pytest.raises(AuthError):
        _auth(settings, client).verify_id_token(access)
