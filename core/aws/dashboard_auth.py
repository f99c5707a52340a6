"""The ``[auth]`` section of ``.streamlit/secrets.toml`` for the dashboard's Cognito sign-in.

On the AWS backend staff sign in with Streamlit's native OIDC login
(``st.login``, authorisation code grant) against the stack's Cognito user pool,
through the confidential app client ``DashboardClient`` of
``infra/template.yaml``. Streamlit reads its settings from ``[auth]``::

    [auth]
    redirect_uri = "https://dashboard.example.com/oauth2callback"
    cookie_secret = "<random>"
    client_id = "<DashboardClientId output>"
    client_secret = "<the app client's secret>"
    server_metadata_url = "https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/openid-configuration"
    client_kwargs = { scope = "openid email profile" }

``storelens dashboard-secrets --stack NAME --url https://dashboard.example.com``
(in ``core/cli.py``) fills it from the stack outputs; the client secret is read
with ``cognito-idp:DescribeUserPoolClient`` (it is never a stack output). The
callback must be the one the template registers: ``<PublicUrl>/oauth2callback``.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.errors import SettingsError

#: Where Streamlit's OIDC login returns (fixed by Streamlit).
CALLBACK_PATH = "/oauth2callback"
#: What the dashboard asks Cognito for: the ID token's e-mail and ``cognito:groups``.
SCOPES = ("openid", "email", "profile")
#: Stack outputs the section is made from.
POOL_OUTPUT = "UserPoolId"
CLIENT_OUTPUT = "DashboardClientId"


def metadata_url(region: str, user_pool_id: str) -> str:
    """The user pool's OpenID Connect discovery document."""
    return f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}/.well-known/openid-configuration"


def callback_url(dashboard_url: str) -> str:
    """``<dashboard>/oauth2callback``: what the app client must list as a callback URL."""
    return dashboard_url.rstrip("/") + CALLBACK_PATH


def _toml_string(value: str) -> str:
    # A TOML basic string: JSON's escaping is a subset TOML reads the same way.
    return json.dumps(value, ensure_ascii=False)


def auth_section(
    *,
    region: str,
    user_pool_id: str,
    client_id: str,
    client_secret: str,
    dashboard_url: str,
    cookie_secret: str | None = None,
) -> str:
    """The ``[auth]`` TOML text (a fresh random ``cookie_secret`` unless one is given)."""
    if not dashboard_url.startswith(("https://", "http://localhost", "http://127.0.0.1")):
        raise SettingsError("the dashboard URL must be https:// (Cognito allows http only for localhost)")
    values = {
        "redirect_uri": callback_url(dashboard_url),
        "cookie_secret": cookie_secret or secrets.token_urlsafe(32),
        "client_id": client_id,
        "client_secret": client_secret,
        "server_metadata_url": metadata_url(region, user_pool_id),
    }
    lines = ["[auth]", *(f"{k} = {_toml_string(v)}" for k, v in values.items())]
    lines.append(f"client_kwargs = {{ scope = {_toml_string(' '.join(SCOPES))} }}")
    return "\n".join(lines) + "\n"


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    """``OutputKey -> OutputValue`` of a deployed stack."""
    [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def auth_section_from_stack(
    outputs: Mapping[str, str], dashboard_url: str, *, region: str, client: Any
) -> str:
    """The ``[auth]`` section for a stack's outputs; ``client`` is a ``cognito-idp`` client."""
    missing = [k for k in (POOL_OUTPUT, CLIENT_OUTPUT) if not outputs.get(k)]
    if missing:
        raise SettingsError(f"the stack has no {', '.join(missing)} output; deploy infra/template.yaml")
    pool, client_id = outputs[POOL_OUTPUT], outputs[CLIENT_OUTPUT]
    app_client = client.describe_user_pool_client(UserPoolId=pool, ClientId=client_id)["UserPoolClient"]
    secret = app_client.get("ClientSecret")
    if not secret:
        raise SettingsError(f"app client {client_id} has no secret; st.login needs a confidential client")
    if callback_url(dashboard_url) not in app_client.get("CallbackURLs", []):
        raise SettingsError(
            f"app client {client_id} does not allow {callback_url(dashboard_url)}; "
            "deploy with PublicUrl set to the dashboard's address"
        )
    return auth_section(
        region=region,
        user_pool_id=pool,
        client_id=client_id,
        client_secret=secret,
        dashboard_url=dashboard_url,
    )


def write_secrets(path: Path, section: str, *, force: bool = False) -> None:
    """Write ``section`` to ``path`` (mode 0600); an existing file is kept unless ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise SettingsError(
            f"{path} exists; add the [auth] section by hand or pass --force to replace the file"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as fh:
        fh.write(section)
    os.chmod(path, 0o600)
