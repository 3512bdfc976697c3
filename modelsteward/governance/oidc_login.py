"""Signing in to the dashboard through an OpenID Connect provider: the authorization-code flow with PKCE (the
authorization request, the code exchanged for an id_token, that token and its nonce checked). The web face keeps
the flow's secrets between the two legs and turns the id_token into the session."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus, urlencode

from modelsteward.errors import StoreUnavailable, Unauthenticated
from modelsteward.governance.oidc import verifier_for

if TYPE_CHECKING:
    from modelsteward.settings import Settings

log = logging.getLogger("modelsteward.governance.oidc_login")

TIMEOUT = 10.0  # seconds for the code exchange: the person is waiting at the callback
_AGAIN = "sign in again"
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
#: what the authorization endpoint's ?error= codes mean to the person who comes back with one (RFC 6749 4.1.2.1)
REFUSALS = {
    "access_denied": "you declined, or the identity provider does not let you use Model Steward",
    "login_required": "the identity provider needs you to sign in there first",
    "consent_required": "the identity provider needs your consent first",
    "interaction_required": "the identity provider needs you to do something there first",
    "temporarily_unavailable": "the identity provider is busy: try again shortly",
    "server_error": "the identity provider had an error: try again shortly",
}


def offered(settings: Settings) -> bool:
    """Whether the dashboard offers sign-in through the identity provider (issuer and client id both set)."""
    return bool(settings.oidc_issuer and settings.oidc_client_id)


@dataclass(frozen=True)
class Authorization:
    """Where to send the browser, and the secrets the callback must find again (never sent anywhere else)."""

    url: str
    state: str
    nonce: str
    code_verifier: str  # PKCE: only its S256 hash travels with the authorization request


def code_challenge(code_verifier: str) -> str:
    """The S256 PKCE challenge of a code verifier (RFC 7636 4.2)."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization(settings: Settings, redirect_uri: str) -> Authorization:
    """A fresh authorization request for the discovery document's ``authorization_endpoint``.

    >>> request = authorization(settings, "https://steward.example.com/ui/login/callback")  # doctest: +SKIP
    >>> request.url  # doctest: +SKIP
    'https://login.example.com/authorize?response_type=code&client_id=steward&...&code_challenge_method=S256'
    """
    assert settings.oidc_client_id is not None
    endpoint = verifier_for(settings).endpoint("authorization_endpoint")
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    query = urlencode({"response_type": "code", "client_id": settings.oidc_client_id, "redirect_uri": redirect_uri,
                       "scope": settings.oidc_scopes, "state": state, "nonce": nonce,
                       "code_challenge": code_challenge(verifier), "code_challenge_method": "S256"})  # fmt: skip
    return Authorization(f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", state, nonce, verifier)


def refusal(error: str) -> str:
    """What an authorization endpoint's ``?error=`` means; its free-text description is not shown (anyone can
    put words in a link to the callback)."""
    code = error if _ERROR_CODE.match(error) else "unknown"
    reason = REFUSALS.get(code, "the identity provider did not sign you in")
    return f"{reason} ({code})"


def id_token(settings: Settings, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> str:
    """Exchanges an authorization code at the ``token_endpoint`` and returns the id_token, checked like any bearer
    token (signature, issuer, audience, times) and answering this flow's nonce.

    ``Unauthenticated`` (with the reason, never the token) when the provider refuses the code or its token does
    not check out; ``StoreUnavailable`` when the provider cannot be reached.
    """
    import httpx

    assert settings.oidc_client_id is not None
    verifier = verifier_for(settings)
    endpoint = verifier.endpoint("token_endpoint")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": code_verifier}  # fmt: skip
    auth = None
    secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
    methods = verifier.discovery().get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    if secret is not None and "client_secret_basic" in methods:  # the default method (OpenID Connect Core 9)
        auth = (quote_plus(settings.oidc_client_id), quote_plus(secret))  # form-encoded first: RFC 6749 2.3.1
    else:
        form["client_id"] = settings.oidc_client_id
        if secret is not None:
            form["client_secret"] = secret
    try:
        response = httpx.post(endpoint, data=form, auth=auth, timeout=TIMEOUT, headers={"accept": "application/json"})
    except httpx.HTTPError as e:
        raise _unreachable(settings, f"its token endpoint could not be reached ({type(e).__name__})") from None
    try:
        body: Any = response.json()
    except ValueError:
        raise _unreachable(settings, f"its token endpoint answered HTTP {response.status_code}, not JSON") from None
    if not isinstance(body, dict):
        raise _unreachable(settings, "its token endpoint answered something other than a JSON object")
    if response.status_code != 200 or "error" in body:
        error = str(body.get("error", f"HTTP {response.status_code}"))
        log.warning("OpenID Connect provider %s refused a sign-in code: %s %s", settings.oidc_issuer, error,
                    str(body.get("error_description", ""))[:200])  # fmt: skip
        code_name = error if _ERROR_CODE.match(error) else "unknown"
        raise Unauthenticated(f"the identity provider refused the sign-in ({code_name}): {_AGAIN}",
                              details={"error": code_name})  # fmt: skip
    token = body.get("id_token")
    if not isinstance(token, str):
        raise Unauthenticated(f"the identity provider sent no id_token (is 'openid' in STEWARD_OIDC_SCOPES?): {_AGAIN}")
    try:
        claims = verifier.verified_claims(token)
    except Unauthenticated:
        if settings.oidc_audience != settings.oidc_client_id:
            log.warning("dashboard sign-in: an id_token was refused; its audience is usually the client id %r, "
                        "and STEWARD_OIDC_AUDIENCE is %r", settings.oidc_client_id, settings.oidc_audience)  # fmt: skip
        raise
    sent = claims.get("nonce")
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
        raise Unauthenticated(f"the identity provider's token was not issued for this sign-in (nonce): {_AGAIN}",
                              details={"claim": "nonce"})  # fmt: skip
    return token


def _unreachable(settings: Settings, reason: str) -> StoreUnavailable:
    return StoreUnavailable(f"the identity provider cannot sign you in right now ({reason}): try again shortly",
                            details={"issuer": settings.oidc_issuer, "reason": reason})  # fmt: skip
