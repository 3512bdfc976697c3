"""OpenID Connect: turns an identity provider's signed JWT into a Steward principal name (PyJWT checks the
signature and claims; this module owns discovery, the key cache and the messages people read)."""

from __future__ import annotations

import functools
import http.client
import ipaddress
import json
import logging
import re
import threading
import time
import urllib.request
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from modelsteward.errors import InvalidArgument, StoreUnavailable, Unauthenticated, require
from modelsteward.governance.identity import _NAME  # an IdP name obeys the rule local user names obey

if TYPE_CHECKING:
    from modelsteward.settings import Settings

log = logging.getLogger("modelsteward.governance.oidc")

DEFAULT_ALGORITHMS = ("RS256", "ES256")
# Public-key algorithms only: "none" forges anything, and HS* would let anyone holding the published public key
# sign tokens with it as an HMAC secret.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub")
_JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_KEY_TYPE = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}  # an algorithm's family and the JWK kty it needs
_TOKEN = "the identity provider's token"
_AUTH = {"header": "authorization"}


def looks_like_jwt(token: str) -> bool:
    """Whether a bearer token has a JWT's shape (three base64url segments); Steward's ``stw_`` tokens do not."""
    return _JWT.match(token) is not None


def check_url(url: str, setting: str) -> None:
    """Refuse a URL keys could be fetched from unprotected: https, or http to this machine (tests, dev IdPs)."""
    parsed = urlparse(url)
    if parsed.scheme == "https" and parsed.hostname:
        return
    if parsed.scheme == "http" and parsed.hostname:
        host = parsed.hostname
        try:
            if host == "localhost" or ipaddress.ip_address(host).is_loopback:
                return
        except ValueError:
            pass
    raise InvalidArgument(
        f"{setting} must be an https:// URL (http:// only to this machine), not {url!r}: keys fetched "
        "without TLS could be replaced by anyone on the network path",
        details={"setting": setting},
    )


class OIDCVerifier:
    """Verifies bearer JWTs issued by one OpenID Connect provider and names the principal they speak for.

    The principal is the value of ``principal_claim`` (else ``email``, else ``sub``) as the IdP sends it, with
    no prefix, so roles are granted to the IdP user name: ``steward roles grant alice@example.com approver``.
    It must pass the same rule local user names do (letters, digits and ``. _ @ -``, at most 128).

    Every bad token raises ``Unauthenticated`` (401) with the reason and never the token; an IdP that cannot be
    reached (and no key known from before) raises ``StoreUnavailable`` (503): the token may be fine, the
    server cannot check it right now.

    >>> verifier = OIDCVerifier("https://login.example.com", audience="steward")  # doctest: +SKIP
    >>> verifier.verify(token)  # doctest: +SKIP
    'alice@example.com'
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks_url: str | None = None,
        *,
        algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
        principal_claim: str = "preferred_username",
        leeway: float = 30,
        timeout: float = 5.0,
        key_lifespan: float = 300,
        refresh_interval: float = 30.0,
        retry_interval: float = 10.0,
    ) -> None:
        if not issuer:
            raise InvalidArgument("an OpenID Connect issuer is needed", details={"setting": "STEWARD_OIDC_ISSUER"})
        if not audience:
            raise InvalidArgument("STEWARD_OIDC_AUDIENCE must be set with STEWARD_OIDC_ISSUER: without it a token "
                                  "issued to any other application of the identity provider would be accepted",
                                  details={"setting": "STEWARD_OIDC_AUDIENCE"})  # fmt: skip
        refused = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if refused or not algorithms:
            raise InvalidArgument(
                f"STEWARD_OIDC_ALGORITHMS accepts public-key algorithms only "
                f"({', '.join(sorted(ASYMMETRIC_ALGORITHMS))}), not {refused or 'an empty list'}",
                details={"setting": "STEWARD_OIDC_ALGORITHMS"},
            )
        check_url(issuer, "STEWARD_OIDC_ISSUER")
        if jwks_url:
            check_url(jwks_url, "STEWARD_OIDC_JWKS_URL")
        self.issuer = issuer
        self.audience = audience
        self.jwks_url = jwks_url
        self.algorithms = tuple(algorithms)
        self.principal_claim = principal_claim
        self.leeway = leeway
        self.timeout = timeout
        self.key_lifespan = key_lifespan
        self.refresh_interval = refresh_interval  # at most one forced refetch per interval for unknown kids
        self.retry_interval = retry_interval  # after a failed fetch, requests do not wait on the IdP again
        self._client: Any = None  # jwt.PyJWKClient, built after discovery
        self._known: list[Any] = []  # the last key set fetched: used while the IdP is down
        self._lock = threading.Lock()
        self._last_refresh = float("-inf")
        self._down_until = float("-inf")
        self._last_failure = ""
        self._document: dict[str, Any] | None = None  # the discovery document, once read
        self._discovery_lock = threading.Lock()  # apart from _lock: _keys holds that one while it discovers

    def verify(self, token: str) -> str:
        """The principal name a valid token speaks for; ``Unauthenticated`` with the reason otherwise."""
        return self._principal(self.verified_claims(token))

    def verified_claims(self, token: str) -> dict[str, Any]:
        """The claims of a token whose signature, issuer, audience and times check out (``Unauthenticated``
        otherwise), for callers that check more than ``verify`` does: the dashboard's sign-in compares the nonce."""
        jwt = require("jwt", "oidc")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated(f"{_TOKEN} is malformed", details=_AUTH) from None
        alg = header.get("alg")
        if alg not in self.algorithms:  # checked before any key is fetched: "none" and HS* never get further
            raise Unauthenticated(
                f"{_TOKEN} is signed with an algorithm this server does not accept "
                f"(it accepts {', '.join(self.algorithms)})",
                details=_AUTH,
            )
        key = self._signing_key(header.get("kid"), alg)
        try:
            claims = jwt.decode(token, key.key, algorithms=[alg], audience=self.audience, issuer=self.issuer,
                                leeway=self.leeway, options={"require": list(REQUIRED_CLAIMS)})  # fmt: skip
        except jwt.ExpiredSignatureError:
            raise Unauthenticated(f"{_TOKEN} has expired: sign in again", details=_AUTH) from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(f"{_TOKEN} was issued for another audience", details=_AUTH) from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated(f"{_TOKEN} was issued by another issuer", details=_AUTH) from None
        except jwt.MissingRequiredClaimError as e:
            raise Unauthenticated(f"{_TOKEN} lacks the required '{e.claim}' claim", details=_AUTH) from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated(f"{_TOKEN} is not valid yet (nbf/iat in the future)", details=_AUTH) from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated(f"{_TOKEN} signature does not verify", details=_AUTH) from None
        except jwt.DecodeError:
            raise Unauthenticated(f"{_TOKEN} is malformed", details=_AUTH) from None
        except jwt.PyJWTError as e:  # the remaining claim checks (iat, ...): the class names the reason
            raise Unauthenticated(f"{_TOKEN} is not valid ({type(e).__name__})", details=_AUTH) from None
        if claims.get("iss") != self.issuer:  # belt and braces: PyJWT 2.10.0 compared issuers by containment
            raise Unauthenticated(f"{_TOKEN} was issued by another issuer", details=_AUTH)
        return claims

    def _principal(self, claims: dict[str, Any]) -> str:
        # The first claim present decides: a token cannot pick a fallback by sending a malformed preferred one.
        for name in dict.fromkeys((self.principal_claim, "email", "sub")):
            value = claims.get(name)
            if value is None or value == "":
                continue
            if name == "email" and claims.get("email_verified") is False:
                raise Unauthenticated("the identity provider has not verified this user's email",
                                      details={"claim": name})  # fmt: skip
            if not isinstance(value, str) or not _NAME.match(value):
                raise Unauthenticated(
                    f"the identity provider's '{name}' claim is not a valid user name here "
                    "(letters, digits and . _ @ -, at most 128): set STEWARD_OIDC_PRINCIPAL_CLAIM to another claim",
                    details={"claim": name},
                )
            return value
        raise Unauthenticated(f"{_TOKEN} names no user ('{self.principal_claim}', 'email' or 'sub')", details=_AUTH)

    # -- keys ---------------------------------------------------------------------------------------

    def _signing_key(self, kid: object, alg: str) -> Any:
        with self._lock:  # one fetch at a time; the others wait for its result instead of repeating it
            now = time.monotonic()
            key = _match(self._keys(now, refresh=False), kid)
            if key is None and now - self._last_refresh >= self.refresh_interval:
                self._last_refresh = now  # a key rotation: refetch once, but not for every forged kid
                key = _match(self._keys(now, refresh=True), kid)
        if key is None:
            raise Unauthenticated(f"{_TOKEN} names an unknown signing key", details=_AUTH)
        if _KEY_TYPE.get(alg[:2]) != key.key_type:
            raise Unauthenticated(f"{_TOKEN} algorithm does not fit its signing key", details=_AUTH)
        return key

    def _keys(self, now: float, *, refresh: bool) -> list[Any]:
        """The IdP's signing keys (PyJWKClient caches them for ``key_lifespan``); while the IdP is unreachable,
        the keys fetched last, so people signed in keep working through an IdP outage."""
        jwt = require("jwt", "oidc")
        if now < self._down_until:
            if self._known and not refresh:
                return self._known
            raise self._unreachable(self._last_failure)
        try:
            if self._client is None:
                url = self.jwks_url or self._discover()
                self._client = jwt.PyJWKClient(url, cache_jwk_set=True, lifespan=self.key_lifespan,
                                               timeout=self.timeout)  # fmt: skip
            keys = list(self._client.get_signing_keys(refresh=refresh))
        except jwt.PyJWKClientConnectionError as e:
            return self._fallback(now, refresh, f"could not fetch its signing keys ({e})")
        except (jwt.PyJWKClientError, jwt.PyJWKSetError) as e:
            return self._fallback(now, refresh, f"its key set is unusable ({e})")
        except StoreUnavailable as e:  # discovery failed
            return self._fallback(now, refresh, str(e.details.get("reason", "")), error=e)
        self._known = keys
        return keys

    def _fallback(self, now: float, refresh: bool, reason: str, *, error: StoreUnavailable | None = None) -> list[Any]:
        self._down_until = now + self.retry_interval
        self._last_failure = reason
        log.warning("OpenID Connect provider %s: %s", self.issuer, reason)
        if self._known and not refresh:
            return self._known
        raise error or self._unreachable(reason)

    def _unreachable(self, reason: str) -> StoreUnavailable:
        return StoreUnavailable(f"the identity provider is unreachable ({self.issuer}): try again shortly",
                                details={"issuer": self.issuer, "reason": reason})  # fmt: skip

    def _discover(self) -> str:
        """The JWKS URL from the issuer's discovery document."""
        return self.endpoint("jwks_uri")

    def endpoint(self, name: str) -> str:
        """An endpoint the issuer's discovery document names (``jwks_uri``, ``authorization_endpoint``,
        ``token_endpoint``, ...): https, or http to this machine; ``StoreUnavailable`` when it cannot be had."""
        document = self.discovery()
        url = document.get(name)
        if not isinstance(url, str):
            raise self._misconfigured(f"its discovery document has no {name}")
        try:
            check_url(url, name)
        except InvalidArgument as e:
            raise self._misconfigured(e.message) from None
        return url

    def discovery(self) -> dict[str, Any]:
        """The issuer's discovery document, fetched once per verifier (a failed fetch is tried again next time)."""
        with self._discovery_lock:
            if self._document is None:
                self._document = self._fetch_discovery()
            return self._document

    def _fetch_discovery(self) -> dict[str, Any]:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:  # scheme checked in __init__
                document = json.load(response)
        except (OSError, ValueError, http.client.HTTPException) as e:
            raise self._unreachable(f"could not read {url} ({e})") from None
        if not isinstance(document, dict) or document.get("issuer") != self.issuer:
            found = document.get("issuer") if isinstance(document, dict) else None
            raise self._misconfigured(f"its discovery document names the issuer {found!r}, not STEWARD_OIDC_ISSUER")
        return document

    def _misconfigured(self, reason: str) -> StoreUnavailable:
        return StoreUnavailable(f"the identity provider cannot be used ({self.issuer}): {reason}",
                                details={"issuer": self.issuer, "reason": reason})  # fmt: skip


def _match(keys: list[Any], kid: object) -> Any:
    if kid is None and len(keys) == 1:  # a provider with a single key may leave kid out
        return keys[0]
    return next((k for k in keys if k.key_id == kid), None) if isinstance(kid, str) else None


def verifier_for(settings: Settings) -> OIDCVerifier:
    """The verifier for these settings, built once per configuration so its key cache outlives requests."""
    assert settings.oidc_issuer is not None and settings.oidc_audience is not None
    return _verifier(settings.oidc_issuer, settings.oidc_audience, settings.oidc_jwks_url,
                     tuple(settings.oidc_algorithms), settings.oidc_principal_claim,
                     settings.oidc_leeway_seconds)  # fmt: skip


@functools.lru_cache(maxsize=8)
def _verifier(issuer: str, audience: str, jwks_url: str | None, algorithms: tuple[str, ...], claim: str,
              leeway: int) -> OIDCVerifier:  # fmt: skip
    return OIDCVerifier(issuer, audience, jwks_url, algorithms=algorithms, principal_claim=claim, leeway=leeway)
