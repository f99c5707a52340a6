"""The StoreLens error hierarchy.

Every error the product raises on purpose derives from :class:`StoreLensError`.
Adapters translate backend-specific failures (``botocore`` ``ClientError`` codes,
``sqlite3`` integrity errors, dlib failures) into these ``from exc`` so callers
and pages only ever handle our own types.
"""

from __future__ import annotations


class StoreLensError(Exception):
    """Base class for every error StoreLens raises deliberately."""

    #: Exit code used by the CLI for this family of errors.
    exit_code: int = 1


class SettingsError(StoreLensError, ValueError):
    """A ``STORELENS_*`` setting is unknown or has an invalid value."""

    exit_code = 78  # EX_CONFIG


class ValidationError(StoreLensError, ValueError):
    """Input does not match what StoreLens accepts (schema, limits, formats)."""

    exit_code = 65  # EX_DATAERR


class EventSchemaError(ValidationError):
    """A FaceEvent document is malformed or has the wrong schema version."""


class PayloadTooLargeError(ValidationError):
    """A payload (e.g. the face crop) exceeds the configured size limit."""


class ImageDecodeError(ValidationError):
    """Image bytes could not be decoded (corrupt, truncated, unsupported)."""


class FaceNotFoundError(ValidationError):
    """No usable face was found where one was expected."""


class MultipleFacesError(ValidationError):
    """More than one face was found where exactly one was expected."""


class FaceTooSmallError(ValidationError):
    """The face is smaller than the configured minimum size."""


class NotFoundError(StoreLensError, LookupError):
    """A customer, pending identity, collection or blob does not exist."""

    exit_code = 66  # EX_NOINPUT


class ConflictError(StoreLensError):
    """The operation conflicts with current state (already decided, exists...)."""

    exit_code = 75


class TokenError(StoreLensError):
    """An approval link token is forged, expired or already used."""

    exit_code = 77  # EX_NOPERM


class AuthError(StoreLensError):
    """Login failed, the session is invalid, or the role may not do this."""

    exit_code = 77


class BackendError(StoreLensError):
    """A storage or cloud backend failed in a way the caller cannot fix."""

    exit_code = 69  # EX_UNAVAILABLE


class MissingDependencyError(StoreLensError, ImportError):
    """An optional dependency needed by the chosen backend is not installed."""

    exit_code = 69
