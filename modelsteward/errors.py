"""The error hierarchy: one root, a stable ``code`` per class, and the HTTP status each maps to."""

from __future__ import annotations

from typing import Any


class StewardError(Exception):
    """Root of every error Model Steward raises on purpose.

    ``code`` is stable and machine-readable; ``message`` is for people; ``details`` names the
    offending field, column or line where there is one.
    """

    code = "steward_error"
    http_status = 400

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}

    def __str__(self) -> str:
        return self.message


class InvalidArgument(StewardError):
    """A value given by the caller is malformed (a name, a reference, a parameter)."""

    code = "invalid_argument"
    http_status = 422


class InvalidDefinition(StewardError):
    """A declarative definition (rule set, optimization program, ...) is invalid; details carry the line."""

    code = "invalid_definition"
    http_status = 422


class SchemaMismatch(StewardError):
    """Input data does not match a model version's signature; details name the column and the problem."""

    code = "schema_mismatch"
    http_status = 422


class UnknownKind(StewardError):
    code = "unknown_kind"
    http_status = 422


class InvalidArtifact(StewardError):
    """An artifact cannot be read as the kind it claims to be (corrupt, truncated or of another kind)."""

    code = "invalid_artifact"
    http_status = 422


class IntegrityError(StewardError):
    """A stored artifact no longer matches its recorded sha256: it was changed after registration."""

    code = "integrity_error"
    http_status = 409


class NotFound(StewardError):
    code = "not_found"
    http_status = 404


class AlreadyExists(StewardError):
    code = "already_exists"
    http_status = 409


class Conflict(StewardError):
    """A concurrent change won, or a compare-and-set precondition failed."""

    code = "conflict"
    http_status = 409


class Unauthenticated(StewardError):
    code = "unauthenticated"
    http_status = 401


class Forbidden(StewardError):
    code = "forbidden"
    http_status = 403


class PayloadTooLarge(StewardError):
    code = "payload_too_large"
    http_status = 413


class StoreUnavailable(StewardError):
    """The metadata database or the artifact store cannot be reached or is too busy right now."""

    code = "unavailable"
    http_status = 503


class ModelFailure(StewardError):
    """A model raised while predicting; the request gets a 500 naming its prediction ids."""

    code = "model_error"
    http_status = 500


class MissingDependency(StewardError):
    """An optional extra is needed for this feature; the message says which one to install."""

    code = "missing_dependency"
    http_status = 501


class RemoteError(StewardError):
    """A server answered with an error this client does not know by code."""

    code = "remote_error"
    http_status = 502


ERRORS_BY_CODE: dict[str, type[StewardError]] = {
    cls.code: cls
    for cls in (
        StewardError,
        InvalidArgument,
        InvalidDefinition,
        SchemaMismatch,
        UnknownKind,
        InvalidArtifact,
        IntegrityError,
        NotFound,
        AlreadyExists,
        Conflict,
        Unauthenticated,
        Forbidden,
        PayloadTooLarge,
        StoreUnavailable,
        ModelFailure,
        MissingDependency,
        RemoteError,
    )
}


def error_from_dict(body: dict[str, Any]) -> StewardError:
    """Rebuild the error a server sent as ``{"code", "message", "details"}``."""
    cls = ERRORS_BY_CODE.get(str(body.get("code")), RemoteError)
    return cls(str(body.get("message", "unknown error")), details=body.get("details") or {})


def require(module: str, extra: str) -> Any:
    """Import an optional dependency or fail with the install hint for its extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(
            f"this feature needs the optional package '{module}': pip install 'modelsteward[{extra}]'",
            details={"module": module, "extra": extra},
        ) from exc
