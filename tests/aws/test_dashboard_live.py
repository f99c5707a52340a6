"""The dashboard in AWS live mode: every page under AppTest against a moto server.

Settings come only from the environment ``infra/local_stack.py`` prints (plus a
tmp data dir), as a reviewer would run ``streamlit run app.py``.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.models import Face, FaceStatus, PendingIdentity, PendingKind, PendingStatus, new_id, utcnow
from tests.aws.test_live_mode import moto_server  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[2]
# The outbox page is local-only (mail goes through SES here).
PAGES = ["live", "approvals", "customers", "analytics", "demo"]


@pytest.fixture
def live_env(moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:  # noqa: F811
    import streamlit as st

    from infra.local_stack import create

    for key in [k for k in os.environ if k.startswith("STORELENS_")]:
        monkeypatch.delenv(key)
    stack = create(moto_server, bucket=f"crops-{uuid.uuid4().hex[:8]}", table_prefix="dash")
    env = stack.environment()
    env.update(STORELENS_DATA_DIR=str(tmp_path / "data"), STORELENS_SECRET_KEY="dash-secret")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield env
    st.cache_data.clear()
    st.cache_resource.clear()


def _seed(env: dict[str, str], *, with_visit: bool = True) -> str:
    from PIL import Image

    from core.bootstrap import build_services
    from core.settings import Settings

    svc = build_services(Settings.from_env({k: v for k, v in env.items() if k.startswith("STORELENS_")}))
    buf = io.BytesIO()
    Image.new("RGB", (96, 96), (90, 120, 150)).save(buf, format="JPEG")
    now = utcnow()
    pending = PendingIdentity(
        pending_id=new_id("pid"),
        kind=PendingKind.NEW,
        status=PendingStatus.PENDING,
        created_at=now,
        last_seen_at=now,
        expires_at=now.replace(year=now.year + 1),
        store_id="store-1",
        face_count=1,
    )
    key = f"crops/{now:%Y/%m/%d}/{uuid.uuid4()}.jpg"
    svc.blobs.put(key, buf.getvalue())
    svc.repos.pending.add(pending)
    svc.repos.faces.add(
        Face(
            face_id=new_id("fac"),
            event_id=None,
            crop_key=key,
            captured_at=now,
            camera_id="cam-1",
            zone="entrance",
            status=FaceStatus.PENDING,
            pending_id=pending.pending_id,
        )
    )
    svc.approvals.request(pending)
    if with_visit:
        from core.models import Customer, Transaction, Visit

        customer = Customer(
            customer_id=new_id("cus"), name="Ada", loyalty_id="L-1", consent=True, consent_at=now
        )
        svc.repos.customers.add(customer)
        svc.repos.visits.add(
            Visit(new_id("vis"), customer.customer_id, "store-1", "cam-1", "entrance", now, now)
        )
        svc.repos.transactions.add(
            Transaction(new_id("txn"), "store-1", now, 1999, customer_id=customer.customer_id)
        )
    svc.close()
    return pending.pending_id


def _open(page: str) -> object:
    from streamlit.testing.v1 import AppTest

    from core.users import User

    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=90)
    at.session_state["user"] = User("ann", "admin")
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    at.switch_page(f"pages/{page}.py").run()
    return at


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_the_aws_backend(live_env: dict[str, str], page: str) -> None:
    _seed(live_env)
    at: Any = _open(page)
    assert not at.exception, [e.message for e in at.exception]


def test_analytics_page_on_an_empty_aws_store(live_env: dict[str, str]) -> None:
    _seed(live_env, with_visit=False)
    at: Any = _open("analytics")
    assert not at.exception, [e.message for e in at.exception]


def test_dashboard_login_on_the_moto_server(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """The login page's authenticator signs in against the emulator's Cognito and its keys."""
    from core.auth import CognitoAuthenticator, LoginRateLimiter
    from core.errors import AuthError
    from core.settings import Settings
    from infra.local_stack import create

    stack = create(
        moto_server,
        bucket=f"crops-{uuid.uuid4().hex[:8]}",
        table_prefix="login",
        admin=("ann", "Passw0rd!x1"),
    )
    env = {k: v for k, v in stack.environment().items() if k.startswith("STORELENS_")}
    auth = CognitoAuthenticator(Settings.from_env(env), limiter=LoginRateLimiter(max_failures=3))
    user = auth.login("ann", "Passw0rd!x1")
    assert (user.name, user.role) == ("ann", "admin")
    with pytest.raises(AuthError, match="wrong user name or password"):
        auth.login("ann", "not-the-password")


def test_a_user_made_with_admin_create_user_sets_a_password_at_first_sign_in(
    moto_server: str,  # noqa: F811
) -> None:
    """NEW_PASSWORD_REQUIRED: the documented ``admin-create-user`` path ends signed in."""
    import boto3

    from core.auth import CognitoAuthenticator, LoginRateLimiter
    from core.aws.cognito import NewPasswordRequiredError
    from core.errors import AuthError
    from core.settings import Settings
    from infra.local_stack import create

    stack = create(moto_server, bucket=f"crops-{uuid.uuid4().hex[:8]}", table_prefix="first")
    env = {k: v for k, v in stack.environment().items() if k.startswith("STORELENS_")}
    idp = boto3.client(
        "cognito-idp",
        region_name=env["STORELENS_AWS_REGION"],
        endpoint_url=moto_server,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    pool = env["STORELENS_COGNITO_USER_POOL_ID"]
    idp.admin_create_user(
        UserPoolId=pool, Username="bob", TemporaryPassword="Temp0rary!pass", MessageAction="SUPPRESS"
    )
    auth = CognitoAuthenticator(Settings.from_env(env), limiter=LoginRateLimiter(max_failures=3))
    with pytest.raises(NewPasswordRequiredError) as info:
        auth.login("bob", "Temp0rary!pass")
    assert info.value.username == "bob" and info.value.session
    with pytest.raises(AuthError, match="refused the new password"):
        auth.set_new_password(info.value, "short")
    user = auth.set_new_password(info.value, "N3w-password!ok")
    assert (user.name, user.role) == ("bob", "viewer")
    assert auth.login("bob", "N3w-password!ok").name == "bob"


def test_staff_sign_in_through_st_login_with_an_auth_secret(live_env: dict[str, str]) -> None:
    """With ``[auth]`` in the secrets, the login page offers st.login only; st.user decides who is in."""
    from streamlit.testing.v1 import AppTest

    from core.aws.dashboard_auth import auth_section
    from core.users import User

    _seed(live_env)
    import tomllib

    section = auth_section(
        region="eu-west-1",
        user_pool_id=live_env["STORELENS_COGNITO_USER_POOL_ID"],
        client_id="dashboard-client",
        client_secret="client-secret",
        dashboard_url="http://localhost:8501",
    )
    at: Any = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=90)
    at.secrets["auth"] = tomllib.loads(section)["auth"]
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.button(key="oidc_login") and not [t for t in at.text_input if t.key == "login_user"]
    assert at.session_state["user"] is None

    at.user = {"is_logged_in": True, "email": "ann@example.com", "cognito:groups": ["admin"]}
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.session_state["user"] == User("ann@example.com", "admin")
    assert any("Live" in t.value for t in at.title)

    at.user = {"is_logged_in": True, "email": "vic@example.com", "cognito:groups": []}
    at.run()
    assert at.session_state["user"] == User("vic@example.com", "viewer")
    # An identity whose ID token has expired is asked to log in again.
    at.user = {"is_logged_in": True, "email": "vic@example.com", "cognito:groups": [], "exp": 1_000_000_000}
    at.run()
    assert at.session_state["user"] is None and at.button(key="oidc_login")
    # A user planted in the session state does not outlive st.user's verdict.
    at.session_state["user"] = User("mallory", "admin")
    at.user = {"is_logged_in": False}
    at.run()
    assert at.session_state["user"] is None and at.button(key="oidc_login")
