"""Users file, password hashing, rate limiting, roles and first-run setup."""

from __future__ import annotations

import io
import json
import stat

import pytest

from core.auth import (
    LocalAuthenticator,
    LoginRateLimiter,
    can,
    create_first_admin,
    require,
    setup_code,
)
from core.errors import AuthError, ConflictError, ValidationError
from core.users import UserStore, check_password, cli_add, hash_password


def test_hash_is_salted_and_checks(tmp_path):
    a, b = hash_password("correct horse", iterations=1000), hash_password("correct horse", iterations=1000)
    assert a != b and a.startswith("pbkdf2_sha256$1000$")
    assert check_password("correct horse", a)
    assert not check_password("wrong horse", a)
    assert not check_password("x", "garbage")


def test_bcrypt_hash_accepted():
    import bcrypt

    encoded = bcrypt.hashpw(b"pasted-by-hand", bcrypt.gensalt(4)).decode()
    assert check_password("pasted-by-hand", encoded)


def test_store_add_verify_and_file_mode(tmp_path):
    store = UserStore(tmp_path / "users.json", iterations=1000)
    store.add("alice", "alice-password", "admin")
    assert store.verify("alice", "alice-password").role == "admin"
    with pytest.raises(AuthError):
        store.verify("alice", "nope-nope")
    with pytest.raises(AuthError):
        store.verify("bob", "alice-password")
    with pytest.raises(ConflictError):
        store.add("alice", "another-password", "viewer")
    mode = stat.S_IMODE((tmp_path / "users.json").stat().st_mode)
    assert mode == 0o600
    raw = json.loads((tmp_path / "users.json").read_text())
    assert "alice-password" not in json.dumps(raw)


@pytest.mark.parametrize(
    ("name", "password", "role"),
    [
        ("", "long-enough", "admin"),
        ("al ice", "long-enough", "admin"),
        ("al", "short", "admin"),
        ("al", "long-enough", "root"),
    ],
)
def test_store_validation(tmp_path, name, password, role):
    with pytest.raises(ValidationError):
        UserStore(tmp_path / "users.json", iterations=1000).add(name, password, role)


def test_cli_add_reads_password_from_stdin(tmp_path):
    user = cli_add(tmp_path, "carol", "viewer", password_stdin=True, stdin=io.StringIO("carol-password\n"))
    assert user.role == "viewer"
    assert UserStore.for_data_dir(tmp_path).verify("carol", "carol-password").name == "carol"


def test_rate_limiter_locks_then_releases():
    now = [0.0]
    limiter = LoginRateLimiter(max_failures=3, window_seconds=60, clock=lambda: now[0])
    for _ in range(3):
        limiter.failed("user:x")
    with pytest.raises(AuthError, match="too many"):
        limiter.check("user:x")
    now[0] = 61.0
    limiter.check("user:x")


def test_local_authenticator_rate_limits_even_right_password(tmp_path):
    store = UserStore(tmp_path / "users.json", iterations=1000)
    store.add("dan", "dan-password", "viewer")
    auth = LocalAuthenticator(store, LoginRateLimiter(max_failures=2, window_seconds=60))
    for _ in range(2):
        with pytest.raises(AuthError, match="wrong"):
            auth.login("dan", "bad-password", client="1.2.3.4")
    with pytest.raises(AuthError, match="too many"):
        auth.login("dan", "dan-password", client="1.2.3.4")


def test_roles():
    from core.users import User

    admin, viewer = User("a", "admin"), User("v", "viewer")
    assert can(admin, "decide") and can(viewer, "view") and not can(viewer, "erase")
    assert not can(None, "view")
    with pytest.raises(AuthError):
        require(viewer, "decide")


def test_first_admin_needs_setup_code(tmp_path):
    code = setup_code(tmp_path)
    assert code and (tmp_path / "setup-code").exists()
    with pytest.raises(AuthError):
        create_first_admin(tmp_path, "wrong", "root", "root-password", "root-password")
    with pytest.raises(ValidationError):
        create_first_admin(tmp_path, code, "root", "root-password", "other-password")
    user = create_first_admin(tmp_path, code, "root", "root-password", "root-password")
    assert user.role == "admin"
    assert setup_code(tmp_path) is None and not (tmp_path / "setup-code").exists()
    with pytest.raises(ConflictError):
        create_first_admin(tmp_path, code, "root2", "root-password", "root-password")


def test_parallel_logins_check_at_most_the_limit(tmp_path):
    """12 attempts at once: the attempt is reserved before the password check, so only 5 get checked."""
    import threading

    store = UserStore.for_data_dir(tmp_path, iterations=20_000)
    store.add("ann", "ann-password", "admin")
    checked = []
    real_verify = store.verify

    def counting_verify(name, password):
        checked.append(password)
        return real_verify(name, password)

    store.verify = counting_verify  # count the password checks that actually run
    auth = LocalAuthenticator(store, LoginRateLimiter(max_failures=5, window_seconds=300))
    barrier = threading.Barrier(12)
    refused = []

    def attempt(i):
        barrier.wait()
        try:
            auth.login("ann", f"guess-{i:02d}", client=f"10.0.0.{i}")
        except AuthError as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(checked) == 5
    assert sum("too many failed" in r for r in refused) == 7
    with pytest.raises(AuthError, match="too many failed"):
        auth.login("ann", "ann-password")


def test_right_password_takes_back_its_reservation(tmp_path):
    store = UserStore.for_data_dir(tmp_path, iterations=1000)
    store.add("ann", "ann-password", "admin")
    limiter = LoginRateLimiter(max_failures=2, window_seconds=300)
    auth = LocalAuthenticator(store, limiter)
    for _ in range(5):
        assert auth.login("ann", "ann-password", client="1.2.3.4").name == "ann"
    with pytest.raises(AuthError, match="wrong"):
        auth.login("ann", "nope", client="1.2.3.4")
    assert auth.login("ann", "ann-password", client="1.2.3.4").name == "ann"


def test_setup_code_is_rate_limited(tmp_path):
    code = setup_code(tmp_path)
    limiter = LoginRateLimiter(max_failures=3, window_seconds=300)
    for guess in ("00000000", "11111111", "22222222"):
        with pytest.raises(AuthError, match="wrong setup code"):
            create_first_admin(tmp_path, guess, "root", "root-password", "root-password", limiter=limiter)
    with pytest.raises(AuthError, match="too many failed"):
        create_first_admin(tmp_path, code, "root", "root-password", "root-password", limiter=limiter)
    assert UserStore.for_data_dir(tmp_path).is_empty()
