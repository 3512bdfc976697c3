"""Settings: one pydantic-settings class read from ``STEWARD_*`` variables and passed in explicitly."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): still name the actor
        return "local"


def strip_credentials(url: str) -> str:
    """``scheme://host/...``: a URL without the user name and password (or token) it may carry, for records,
    logs and alerts that must never hold a secret (``https://user:token@host/repo`` -> ``https://host/repo``)."""
    if "://" in url and "@" in url.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://{rest.split('@', 1)[1]}"
    return url


def _without_credentials(url: str) -> str:
    """``scheme://user:***@host/...``: the password (or secret key) of a URL masked."""
    import re

    return re.sub(r"(://[^/:@]*):[^/@]*@", r"\1:***@", url)


class Settings(BaseSettings):
    """Where the data lives and how the server behaves.

    Every field can be set by an environment variable with the prefix ``STEWARD_``,
    e.g. ``STEWARD_DATA_DIR`` or ``STEWARD_DATABASE_URL``.
    """

    model_config = SettingsConfigDict(env_prefix="STEWARD_", extra="ignore")

    data_dir: Path = Field(default=Path("./steward-data"), description="embedded data directory")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the metadata store; default: SQLite under data_dir"
    )
    artifact_url: str | None = Field(
        default=None, description="fsspec URL of the artifact store; default: data_dir/artifacts"
    )
    inference_url: str | None = Field(
        default=None, description="where the prediction log goes; default: data_dir/inference"
    )
    feedback_url: str | None = Field(default=None, description="where ground truth goes; default: data_dir/feedback")
    log_flush_interval: float = Field(default=1.0, gt=0, le=60, description="seconds between prediction-log flushes")
    log_max_queue_rows: int = Field(
        default=1_000_000,
        ge=1,
        description="rows a worker's prediction (or feedback) log may hold in memory, waiting to be written; beyond "
        "it, predictions are refused with 503 (back-pressure) rather than served unlogged",
    )
    log_retry_max: float = Field(
        default=30.0, gt=0, le=600, description="longest wait in seconds between retries of a failed log write"
    )
    log_alert_after_failures: int = Field(
        default=3,
        ge=1,
        description="failed log writes in a row after which the worker raises a critical alert (system rule "
        "system-prediction-log) and logs an error; it resolves when the kept rows are written",
    )
    route_refresh_interval: float = Field(default=0.5, gt=0, le=60, description="seconds between route checks")
    user: str = Field(default_factory=_default_user, description="actor recorded for embedded changes")
    db_busy_timeout: float = Field(default=10.0, gt=0, description="seconds to wait for a locked database")
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    api_token: SecretStr | None = Field(
        default=None, description="bearer token the server demands for every change (STEWARD_API_TOKEN)"
    )
    auth: Literal["auto", "required", "off"] = Field(
        default="auto",
        description="required: every request needs a token; auto: required unless the server binds a loopback "
        "address; off: only changes need STEWARD_API_TOKEN when one is set (STEWARD_AUTH)",
    )
    keep_alive_timeout: int = Field(
        default=75, ge=1, le=3600,
        description="seconds the server keeps an idle keep-alive connection open; keep it above the idle timeout "
        "of the load balancer in front (60 s on AWS ALB), else the balancer reuses connections the server is "
        "closing and clients get errors (uvicorn's own default is 5 s)",
    )  # fmt: skip
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    max_request_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    dask_scheduler: str | None = Field(
        default=None, description="address of a dask.distributed scheduler for engine: dask monitors"
    )
    dask_timeout: float = Field(
        default=3600.0, gt=0, description="seconds an engine: dask monitor may wait for its cluster before it fails"
    )
    demo: bool = Field(default=False, description="serve the demo's webhook inbox at /demo/inbox")
    scheduler: bool = Field(default=True, description="run scheduled monitors and alert notifications in steward up")
    tune_gc: bool = Field(
        default=True, description="tune Python's garbage collector for serving when the server starts"
    )
    job_id: int | None = Field(
        default=None, description="set by the engine in a retraining job's process: versions it registers carry it"
    )
    debug: bool = False
    oidc_issuer: str | None = Field(
        default=None, description="OpenID Connect issuer URL; when set, the IdP's JWTs are accepted as bearer tokens"
    )
    oidc_audience: str | None = Field(
        default=None, description="the 'aud' Steward's tokens carry (required with issuer)"
    )
    oidc_jwks_url: str | None = Field(
        default=None, description="default: jwks_uri of {issuer}/.well-known/openid-configuration"
    )
    oidc_principal_claim: str = Field(
        default="preferred_username", description="claim naming the user (fallback: email, then sub)"
    )
    oidc_algorithms: list[str] = Field(default=["RS256", "ES256"], description="accepted public-key algorithms")
    oidc_client_id: str | None = Field(default=None, description="the dashboard's client id at the IdP (login)")
    oidc_client_secret: SecretStr | None = Field(
        default=None, description="the dashboard's client secret (confidential clients; public ones use PKCE alone)"
    )
    oidc_scopes: str = Field(default="openid profile email", description="scopes the dashboard's sign-in asks for")
    oidc_redirect_url: str | None = Field(
        default=None, description="default: {the request's base URL}/ui/login/callback (set it behind a proxy)"
    )
    oidc_leeway_seconds: int = Field(default=30, ge=0, le=300, description="clock skew allowed on exp/iat/nbf")

    def __repr_args__(self) -> Any:
        # URLs may carry credentials (postgresql://user:password@..., s3://key:secret@...): never show them
        for name, value in super().__repr_args__():
            yield name, (_without_credentials(value) if isinstance(value, str) and "://" in value else value)

    @field_validator("api_token", "oidc_client_secret", mode="before")
    @classmethod
    def _no_empty_token(cls, value: object) -> object:
        return None if value in ("", None) else value  # STEWARD_API_TOKEN= means no token, not an empty one

    @model_validator(mode="after")
    def _oidc_is_safe(self) -> Settings:
        if not self.oidc_issuer:
            return self
        if not self.oidc_audience:  # else a token minted for any other app of the same IdP would be accepted
            raise ValueError("STEWARD_OIDC_AUDIENCE must be set when STEWARD_OIDC_ISSUER is")
        public_key = {f"{family}{bits}" for family in ("RS", "PS", "ES") for bits in (256, 384, 512)} | {"EdDSA"}
        refused = [a for a in self.oidc_algorithms if a not in public_key]
        if refused or not self.oidc_algorithms:  # never "none", never HS* (the public key would be the secret)
            raise ValueError(f"STEWARD_OIDC_ALGORITHMS takes public-key algorithms (RS256, ES256, ...), not {refused}")
        from urllib.parse import urlparse

        urls = (("STEWARD_OIDC_ISSUER", self.oidc_issuer), ("STEWARD_OIDC_JWKS_URL", self.oidc_jwks_url),
                ("STEWARD_OIDC_REDIRECT_URL", self.oidc_redirect_url))  # fmt: skip
        for name, url in urls:
            parsed = urlparse(url or "")
            local = parsed.scheme == "http" and parsed.hostname in ("127.0.0.1", "localhost", "::1")
            if url and not ((parsed.scheme == "https" and parsed.hostname) or local):  # keys, sign-in codes: TLS
                raise ValueError(f"{name} must be an https:// URL (http:// only to this machine), not {url!r}")
        return self

    def job_environment(self) -> dict[str, str]:
        """The variables a child process needs to open the same store (database, artifacts, logs)."""
        env = {
            "STEWARD_DATA_DIR": str(self.data_dir.resolve()),
            "STEWARD_DATABASE_URL": self.resolved_database_url(),
            "STEWARD_ARTIFACT_URL": self.resolved_artifact_url(),
            "STEWARD_INFERENCE_URL": self.resolved_inference_url(),
            "STEWARD_FEEDBACK_URL": self.resolved_feedback_url(),
        }
        return env

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'steward.db').resolve()}"

    def resolved_artifact_url(self) -> str:
        if self.artifact_url:
            return self.artifact_url
        return str((self.data_dir / "artifacts").resolve())

    def resolved_inference_url(self) -> str:
        return self.inference_url or str((self.data_dir / "inference").resolve())

    def resolved_feedback_url(self) -> str:
        return self.feedback_url or str((self.data_dir / "feedback").resolve())

    @property
    def auth_required(self) -> bool:
        """Whether every request must carry a token: always with ``auth: required``; with ``auto``, when
        the server listens on anything but a loopback address."""
        if self.auth != "auto":
            return self.auth == "required"
        import ipaddress

        if self.host == "localhost":
            return False
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return True

    @property
    def uses_embedded_database(self) -> bool:
        return self.resolved_database_url().startswith("sqlite")
