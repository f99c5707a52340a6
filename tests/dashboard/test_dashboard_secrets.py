"""The Cognito sign-in's ``[auth]`` secrets, made from a stack (moto) and read as Streamlit reads them."""

from __future__ import annotations

import re
import stat
import tomllib
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from core.aws import dashboard_auth
from core.cli import main
from core.errors import SettingsError
from tests.aws.moto_support import fake_credentials

REGION = "eu-west-1"
URL = "https://dashboard.example.com"

# The two outputs infra/template.yaml gives (tests/aws/test_template_contract.py checks they exist there).
STACK = """
Parameters:
  Pool: {Type: String}
  Client: {Type: String}
Resources:
  Topic: {Type: "AWS::SNS::Topic"}
Outputs:
  UserPoolId: {Value: !Ref Pool}
  DashboardClientId: {Value: !Ref Client}
"""


@pytest.fixture
def stack():
    with fake_credentials(), mock_aws():
        idp = boto3.client("cognito-idp", region_name=REGION)
        pool = idp.create_user_pool(PoolName="storelens-approvers")["UserPool"]["Id"]
        client = idp.create_user_pool_client(
            UserPoolId=pool,
            ClientName="storelens-dashboard",
            GenerateSecret=True,
            AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthFlows=["code"],
            AllowedOAuthScopes=list(dashboard_auth.SCOPES),
            CallbackURLs=[f"{URL}/oauth2callback"],
        )["UserPoolClient"]
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="storelens",
            TemplateBody=STACK,
            Parameters=[
                {"ParameterKey": "Pool", "ParameterValue": pool},
                {"ParameterKey": "Client", "ParameterValue": client["ClientId"]},
            ],
        )
        yield pool, client


def _streamlit_provider(auth: dict) -> dict:
    """What Streamlit's st.login makes of ``[auth]`` (its default provider), and the keys it requires."""
    from streamlit.auth_util import generate_default_provider_section
    from streamlit.runtime.secrets import AttrDict

    provider = generate_default_provider_section(AttrDict(auth))
    assert {"client_id", "client_secret", "server_metadata_url"} <= provider.keys()
    assert {"redirect_uri", "cookie_secret"} <= auth.keys()
    return provider


def test_cli_writes_the_auth_section_from_the_stack(stack, tmp_path: Path, capsys) -> None:
    pool, client = stack
    out = tmp_path / ".streamlit" / "secrets.toml"
    argv = [
        "dashboard-secrets",
        "--stack",
        "storelens",
        "--url",
        URL,
        "--region",
        REGION,
        "--output",
        str(out),
    ]
    assert main(argv) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    auth = tomllib.loads(out.read_text())["auth"]
    assert auth["redirect_uri"] == "https://dashboard.example.com/oauth2callback"
    assert auth["client_id"] == client["ClientId"] and auth["client_secret"] == client["ClientSecret"]
    assert auth["server_metadata_url"] == (
        f"https://cognito-idp.{REGION}.amazonaws.com/{pool}/.well-known/openid-configuration"
    )
    assert len(auth["cookie_secret"]) >= 32
    provider = _streamlit_provider(auth)
    assert provider["client_kwargs"] == {"scope": "openid email profile"}
    # An existing file is kept unless --force; a second run makes a new cookie secret.
    assert main(argv) != 0
    assert "exists" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0
    assert tomllib.loads(out.read_text())["auth"]["cookie_secret"] != auth["cookie_secret"]


def test_a_callback_the_client_does_not_allow_is_refused(stack) -> None:
    pool, client = stack
    outputs = {"UserPoolId": pool, "DashboardClientId": client["ClientId"]}
    idp = boto3.client("cognito-idp", region_name=REGION)
    with pytest.raises(
        SettingsError, match=re.escape("does not allow https://other.example.com/oauth2callback")
    ):
        dashboard_auth.auth_section_from_stack(
            outputs, "https://other.example.com", region=REGION, client=idp
        )
    with pytest.raises(SettingsError, match="DashboardClientId"):
        dashboard_auth.auth_section_from_stack({"UserPoolId": pool}, URL, region=REGION, client=idp)


def test_a_public_client_without_secret_is_refused(stack) -> None:
    pool, _ = stack
    idp = boto3.client("cognito-idp", region_name=REGION)
    public = idp.create_user_pool_client(
        UserPoolId=pool, ClientName="public", CallbackURLs=[f"{URL}/oauth2callback"]
    )
    outputs = {"UserPoolId": pool, "DashboardClientId": public["UserPoolClient"]["ClientId"]}
    with pytest.raises(SettingsError, match="no secret"):
        dashboard_auth.auth_section_from_stack(outputs, URL, region=REGION, client=idp)


def test_section_escapes_values_and_wants_https() -> None:
    text = dashboard_auth.auth_section(
        region="us-east-1",
        user_pool_id="us-east-1_AbC",
        client_id="cid",
        client_secret='se"cr\\et',
        dashboard_url="http://localhost:8501/",
        cookie_secret="fixed",
    )
    auth = tomllib.loads(text)["auth"]
    assert (
        auth["client_secret"] == 'se"cr\\et'
        and auth["redirect_uri"] == "http://localhost:8501/oauth2callback"
    )
    _streamlit_provider(auth)
    with pytest.raises(SettingsError, match="https"):
        dashboard_auth.auth_section(
            region="r",
            user_pool_id="p",
            client_id="c",
            client_secret="s",
            dashboard_url="http://shop.example",
        )
