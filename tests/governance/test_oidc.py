"""OpenID Connect: an identity provider's JWTs name their principal; every bad token gets a 401 saying why."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from modelsteward.api.app import create_app
from modelsteward.catalog.registration import prepare_registration, to_manifest
from modelsteward.errors import StoreUnavailable, Unauthenticated
from modelsteward.governance.oidc import OIDCVerifier, looks_like_jwt
from modelsteward.settings import Settings

AUDIENCE = "steward"
ADMIN = "bootstrap-admin-token-for-tests"


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    return {name: rsa.generate_private_key(public_exponent=65537, key_size=2048) for name in ("k1", "k2", "evil")}


class FakeIdP:
    """A discovery document and a JWKS served on 127.0.0.1, with the keys it publishes changeable."""

    def __init__(self, keys: dict[str, rsa.RSAPrivateKey]) -> None:
        self.keys = keys
        self.published = ["k1"]
        self.jwks_hits = 0
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": idp.issuer, "jwks_uri": f"{idp.issuer}/jwks"}
                elif self.path == "/jwks":
                    idp.jwks_hits += 1
                    body = {"keys": [idp.jwk(kid) for kid in idp.published]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def jwk(self, kid: str) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key()))
        return {**public, "kid": kid, "use": "sig", "alg": "RS256"}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": AUDIENCE, "sub": "00u1a2b3c", "iat": now, "exp": now + 300,
                  "preferred_username": "alice"}  # fmt: skip
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, kid: str = "k1", *, key: str | None = None, **claims: Any) -> str:
        return jwt.encode(self.claims(**claims), self.keys[key or kid], algorithm="RS256", headers={"kid": kid})

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def idp(keys: dict[str, rsa.RSAPrivateKey]) -> Iterator[FakeIdP]:
    server = FakeIdP(keys)
    yield server
    server.stop()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hand_made(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    """A token PyJWT refuses to make: unsigned (``alg: none``) or HMAC-signed with a public key as the secret."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = b"" if secret is None else hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _bad_tokens(idp: FakeIdP) -> dict[str, tuple[str, str]]:
    """Each bad token, with the words its refusal must contain."""
    public_pem = (
        idp.keys["k1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    now = int(time.time())
    return {
        "expired": (idp.token(iat=now - 7200, exp=now - 3600), "has expired"),
        "wrong audience": (idp.token(aud="another-app"), "issued for another audience"),
        "wrong issuer": (idp.token(iss="http://127.0.0.1:9/elsewhere"), "issued by another issuer"),
        "another key, same kid": (idp.token(key="evil"), "signature does not verify"),
        "another key, its own kid": (idp.token("evil"), "unknown signing key"),
        "alg none": (_hand_made({"alg": "none", "kid": "k1"}, idp.claims(), None), "algorithm this server does not"),
        "HS256 with the public key": (
            _hand_made({"alg": "HS256", "kid": "k1", "typ": "JWT"}, idp.claims(), public_pem),
            "algorithm this server does not accept",
        ),
        "missing sub": (idp.token(sub=None), "lacks the required 'sub' claim"),
        "garbage": ("eyJhbGciOi.bm90IGpzb24.c2ln", "is malformed"),
        "not a user name": (idp.token(preferred_username="alice smith"), "not a valid user name"),
    }


def test_a_valid_token_names_its_principal_with_fallbacks(idp: FakeIdP) -> None:
    verifier = OIDCVerifier(idp.issuer, AUDIENCE)
    assert verifier.verify(idp.token()) == "alice"
    assert verifier.verify(idp.token(preferred_username=None, email="alice@example.com")) == "alice@example.com"
    assert verifier.verify(idp.token(preferred_username=None)) == "00u1a2b3c"  # sub at last
    with pytest.raises(Unauthenticated, match="not verified"):
        verifier.verify(idp.token(preferred_username=None, email="eve@example.com", email_verified=False))
    assert idp.jwks_hits == 1  # discovery once, then the key set from the cache
    assert OIDCVerifier(idp.issuer, AUDIENCE, principal_claim="email").verify(idp.token(email="a@b.io")) == "a@b.io"


BAD = ["expired", "wrong audience", "wrong issuer", "another key, same kid", "another key, its own kid", "alg none",
       "HS256 with the public key", "missing sub", "garbage", "not a user name"]  # fmt: skip


@pytest.mark.parametrize("case", BAD)
def test_bad_tokens_are_refused_with_their_reason_and_never_echoed(idp: FakeIdP, case: str) -> None:
    token, reason = _bad_tokens(idp)[case]
    assert looks_like_jwt(token)
    with pytest.raises(Unauthenticated) as refused:
        OIDCVerifier(idp.issuer, AUDIENCE).verify(token)
    assert reason in refused.value.message
    assert token not in json.dumps(refused.value.to_dict()) and token.split(".")[1] not in refused.value.message


def test_a_rotated_key_is_fetched_without_a_restart_but_forged_kids_do_not_hammer_the_idp(idp: FakeIdP) -> None:
    verifier = OIDCVerifier(idp.issuer, AUDIENCE)
    assert verifier.verify(idp.token("k1")) == "alice" and idp.jwks_hits == 1
    idp.published = ["k1", "k2"]  # the IdP rotates: a new kid appears
    assert verifier.verify(idp.token("k2", preferred_username="bob")) == "bob"
    assert idp.jwks_hits == 2  # one refetch for the unknown kid
    for _ in range(3):
        with pytest.raises(Unauthenticated, match="unknown signing key"):
            verifier.verify(idp.token("evil"))
    assert idp.jwks_hits == 2  # refetches are rate-limited: a forged kid cannot make every request call the IdP


def test_an_unreachable_idp_is_a_503_but_known_keys_keep_working_through_an_outage(idp: FakeIdP) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(StoreUnavailable, match="the identity provider is unreachable") as down:
        OIDCVerifier(closed, AUDIENCE, timeout=1).verify(idp.token())
    assert down.value.http_status == 503

    verifier = OIDCVerifier(idp.issuer, AUDIENCE, key_lifespan=0.05)
    token = idp.token()
    assert verifier.verify(token) == "alice"
    idp.stop()
    time.sleep(0.1)  # the cached key set has expired, and the IdP is gone
    assert verifier.verify(token) == "alice"  # the keys fetched last still verify
    with pytest.raises(StoreUnavailable, match="unreachable"):
        verifier.verify(idp.token("k2"))  # a key it never saw cannot be checked now


def test_oidc_settings_are_refused_at_start_up_when_unsafe(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="STEWARD_OIDC_AUDIENCE must be set"):
        Settings(data_dir=tmp_path, oidc_issuer="https://login.example.com")
    with pytest.raises(ValidationError, match="STEWARD_OIDC_ALGORITHMS"):
        Settings(data_dir=tmp_path, oidc_issuer="https://login.example.com", oidc_audience="s",
                 oidc_algorithms=["RS256", "HS256"])  # fmt: skip
    with pytest.raises(ValidationError, match="STEWARD_OIDC_ISSUER must be an https"):
        Settings(data_dir=tmp_path, oidc_issuer="http://login.example.com", oidc_audience="s")
    with pytest.raises(ValidationError, match="STEWARD_OIDC_ISSUER must be an https"):
        Settings(data_dir=tmp_path, oidc_issuer="http://127.0.0.1.evil.example", oidc_audience="s")
    assert Settings(data_dir=tmp_path, oidc_issuer="https://login.example.com", oidc_audience="s").oidc_algorithms == [
        "RS256",
        "ES256",
    ]
    assert not looks_like_jwt("stw_12_" + "a" * 40)


@pytest.fixture
def server(tmp_path: Path, numeric_model: Any, idp: FakeIdP) -> Iterator[TestClient]:
    """A server that demands a token on every request and trusts the fake IdP beside its own tokens."""
    settings = Settings(data_dir=tmp_path, auth="required", api_token=SecretStr(ADMIN), oidc_issuer=idp.issuer,
                        oidc_audience=AUDIENCE)  # fmt: skip
    app = create_app(settings)
    model, X = numeric_model
    with TestClient(app) as client:
        manifest, data = to_manifest(prepare_registration("risk", model, input_example=X.head()))
        created = client.post("/api/v1/models/risk/versions", headers={"authorization": f"Bearer {ADMIN}"},
                              data={"manifest": json.dumps(manifest)},
                              files={"artifact": ("artifact", data, "application/octet-stream")})  # fmt: skip
        assert created.status_code == 201, created.text
        yield client
    app.state.steward.close()


def test_an_idp_user_reads_changes_as_itself_and_gets_roles_from_steward_grants(server: TestClient, idp: FakeIdP):
    admin = {"authorization": f"Bearer {ADMIN}"}
    alice = {"authorization": f"Bearer {idp.token()}"}
    assert server.get("/api/v1/models", headers=alice).status_code == 403  # authenticated, but no role yet
    granted = server.post("/api/v1/roles", json={"principal": "alice", "role": "data_scientist"}, headers=admin)
    assert granted.status_code == 200  # roles are granted to the IdP user name
    assert server.get("/api/v1/models", headers=alice).status_code == 200
    assert server.put("/api/v1/models/risk/aliases/staging", json={"version": 1}, headers=alice).status_code == 200
    events = server.get("/api/v1/events", headers=admin).json()
    assert next(e for e in events if e["action"] == "alias.set")["actor"] == "alice"

    assert server.post("/api/v1/users", json={"name": "eve"}, headers=alice).status_code == 403
    granted = server.post("/api/v1/roles", json={"principal": "alice", "role": "admin"}, headers=admin)
    assert granted.status_code == 200  # roles are granted to the IdP user name
    assert server.post("/api/v1/users", json={"name": "eve"}, headers=alice).status_code == 201

    made = server.post("/api/v1/tokens", json={"principal": "eve"}, headers=admin).json()
    server.post("/api/v1/roles", json={"principal": "eve", "role": "viewer"}, headers=admin)
    assert server.get("/api/v1/models", headers={"authorization": f"Bearer {made['token']}"}).status_code == 200


def test_every_bad_idp_token_gets_a_401_naming_the_reason(server: TestClient, idp: FakeIdP) -> None:
    for case, (token, reason) in _bad_tokens(idp).items():
        response = server.get("/api/v1/models", headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 401, case
        body = response.json()
        assert set(body) == {"error"} and body["error"]["code"] == "unauthenticated", case
        assert reason in body["error"]["message"], case
        assert token not in response.text, case
