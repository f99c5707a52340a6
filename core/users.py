"""Local dashboard users: a JSON file of salted, slow password hashes.

The local backend keeps its users in ``<data_dir>/users.json`` (mode 0600)::

    {"version": 1, "users": {"alice": {"role": "admin", "password": "pbkdf2_sha256$...",
                                       "created_at": "2026-11-23T21:30:00+00:00"}}}

Passwords are hashed with PBKDF2-HMAC-SHA256 (stdlib, 600 000 iterations as
OWASP recommends, 16-byte random salt); the iteration count is stored in each
hash so it can be raised later without breaking old entries. Comparison is
constant time. Hashes made with ``bcrypt`` (``$2b$...``) are accepted too, so
an operator may paste one in by hand.

>>> store = UserStore(Path("/tmp/doc-users.json"))            # doctest: +SKIP
>>> store.add("alice", "s3cret-passw0rd", role="admin")        # doctest: +SKIP
>>> store.verify("alice", "s3cret-passw0rd").role              # doctest: +SKIP
'admin'

``storelens users add NAME --role admin|viewer [--password-stdin]`` (in
``core/cli.py``) calls :func:`cli_add`.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import json
import os
import re
import secrets
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from core.errors import AuthError, ConflictError, NotFoundError, ValidationError

ROLES = ("admin", "viewer")
USERS_FILE = "users.json"
PBKDF2_ITERATIONS = 600_000
MIN_PASSWORD_LENGTH = 8
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
# A hash to compare against when the user does not exist, so that a wrong user
# name costs as much time as a wrong password (no user enumeration by timing).
_DUMMY_SALT = b"storelens-dummy!"


@dataclass(frozen=True, slots=True)
class User:
    """A dashboard user as the app sees it (never carries the hash)."""

    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


# ------------------------------------------------------------------ hashing


def hash_password(password: str, *, iterations: int = PBKDF2_ITERATIONS) -> str:
    """A salted PBKDF2-SHA256 hash in the form ``pbkdf2_sha256$iter$salt$hash``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return "$".join(("pbkdf2_sha256", str(iterations), _b64(salt), _b64(digest)))


def check_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded`` (PBKDF2 or bcrypt), in constant time."""
    if encoded.startswith(("$2a$", "$2b$", "$2y$")):
        import bcrypt  # lazy: only for hand-pasted bcrypt hashes

        return bcrypt.checkpw(password.encode(), encoded.encode())
    try:
        scheme, iterations, salt, digest = encoded.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    actual = hashlib.pbkdf2_hmac("sha256", password.encode(), _unb64(salt), int(iterations))
    return hmac.compare_digest(actual, _unb64(digest))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


# ------------------------------------------------------------------ the store


def validate_name(name: str) -> str:
    """Return ``name`` stripped, or raise ``ValidationError`` if unusable."""
    name = name.strip()
    if not _NAME_RE.match(name):
        raise ValidationError(
            "user name must be 1-64 characters: letters, digits and . _ @ - (not starting with a symbol)"
        )
    return name


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    return password


def validate_role(role: str) -> str:
    if role not in ROLES:
        raise ValidationError(f"role must be one of: {', '.join(ROLES)}")
    return role


class UserStore:
    """Users in one JSON file, written atomically (temp file + rename, mode 0600)."""

    def __init__(self, path: Path, *, iterations: int = PBKDF2_ITERATIONS) -> None:
        self.path = Path(path)
        self.iterations = iterations
        self._lock = threading.Lock()

    @classmethod
    def for_data_dir(cls, data_dir: Path, **kwargs: Any) -> UserStore:
        return cls(Path(data_dir) / USERS_FILE, **kwargs)

    # -- reading
    def _load(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        return dict(data.get("users", {}))

    def _save(self, users: dict[str, dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".users-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"version": 1, "users": users}, fh, indent=2, sort_keys=True)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def list(self) -> list[User]:
        """All users, sorted by name."""
        return [User(name, entry["role"]) for name, entry in sorted(self._load().items())]

    def get(self, name: str) -> User:
        entry = self._load().get(name)
        if entry is None:
            raise NotFoundError(f"no user {name!r}")
        return User(name, entry["role"])

    def is_empty(self) -> bool:
        return not self._load()

    # -- writing
    def add(self, name: str, password: str, role: str = "viewer", *, replace: bool = False) -> User:
        """Create a user (``ConflictError`` if it exists, unless ``replace``)."""
        name = validate_name(name)
        validate_password(password)
        validate_role(role)
        encoded = hash_password(password, iterations=self.iterations)
        with self._lock:
            users = self._load()
            if name in users and not replace:
                raise ConflictError(f"user {name!r} already exists")
            users[name] = {"role": role, "password": encoded, "created_at": datetime.now(UTC).isoformat()}
            self._save(users)
        return User(name, role)

    def set_password(self, name: str, password: str) -> None:
        validate_password(password)
        with self._lock:
            users = self._load()
            if name not in users:
                raise NotFoundError(f"no user {name!r}")
            users[name]["password"] = hash_password(password, iterations=self.iterations)
            self._save(users)

    def set_role(self, name: str, role: str) -> None:
        """Change a user's role; refuses to leave the store without an admin."""
        validate_role(role)
        with self._lock:
            users = self._load()
            if name not in users:
                raise NotFoundError(f"no user {name!r}")
            users[name]["role"] = role
            if not any(u["role"] == "admin" for u in users.values()):
                raise ValidationError("at least one admin must remain")
            self._save(users)

    def remove(self, name: str) -> None:
        """Delete a user; refuses to remove the last admin."""
        with self._lock:
            users = self._load()
            if users.pop(name, None) is None:
                raise NotFoundError(f"no user {name!r}")
            if not any(u["role"] == "admin" for u in users.values()):
                raise ValidationError("at least one admin must remain")
            self._save(users)

    # -- checking
    def verify(self, name: str, password: str) -> User:
        """The user if ``password`` is right; ``AuthError`` otherwise (same message either way)."""
        entry = self._load().get(name.strip())
        if entry is None:
            hashlib.pbkdf2_hmac("sha256", password.encode(), _DUMMY_SALT, self.iterations)
            raise AuthError("wrong user name or password")
        if not check_password(password, entry["password"]):
            raise AuthError("wrong user name or password")
        return User(name.strip(), entry["role"])


# ------------------------------------------------------------------ CLI


def read_password(
    *,
    password_stdin: bool = False,
    stdin: IO[str] | None = None,
    prompt: Callable[[str], str] = getpass.getpass,
) -> str:
    """The new password: first line of stdin, or asked twice on the terminal."""
    if password_stdin:
        line = (stdin or sys.stdin).readline().rstrip("\r\n")
        return validate_password(line)
    first = prompt("Password: ")
    validate_password(first)
    if prompt("Repeat password: ") != first:
        raise ValidationError("the passwords do not match")
    return first


def cli_add(
    data_dir: Path,
    name: str,
    role: str = "viewer",
    *,
    password_stdin: bool = False,
    replace: bool = False,
    stdin: IO[str] | None = None,
) -> User:
    """``storelens users add NAME --role admin|viewer [--password-stdin] [--replace]``."""
    password = read_password(password_stdin=password_stdin, stdin=stdin)
    return UserStore.for_data_dir(data_dir).add(name, password, role, replace=replace)
