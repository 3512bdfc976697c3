"""Identity routes: users and service accounts, and their API tokens (administrators only)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from modelsteward.api.deps import Admin, needs
from modelsteward.api.json_route import StrictJSONRoute
from modelsteward.api.params import RowId
from modelsteward.domain.records import NewToken, Principal, TokenInfo

router = APIRouter(prefix="/api/v1", tags=["identities"], route_class=StrictJSONRoute)


class UserRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    kind: Literal["user", "service"] = "user"
    display_name: str = Field(default="", max_length=256)


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    principal: str = Field(min_length=1, max_length=256)
    name: str = Field(default="default", min_length=1, max_length=128)
    expires_in: str | None = Field(default="90d", description="e.g. 30d, 12h; null for a token that never expires")


@router.get("/users", response_model=list[Principal], summary="Users and service accounts", **needs("identity.read"))
def list_users(st: Admin) -> Any:
    return st.list_users()


@router.post(
    "/users",
    response_model=Principal,
    status_code=201,
    summary="Create a user or service account",
    **needs("identity.admin"),
)
def create_user(st: Admin, request: UserRequest) -> Any:
    return st.create_user(request.name, kind=request.kind, display_name=request.display_name)


@router.post(
    "/users/{name}/disable",
    status_code=204,
    summary="Disable a user (its tokens stop working)",
    **needs("identity.admin"),
)
def disable_user(st: Admin, name: str) -> None:
    st.disable_user(name)


@router.get(
    "/tokens", response_model=list[TokenInfo], summary="API tokens (never their secrets)", **needs("identity.read")
)
def list_tokens(st: Admin, principal: str | None = None) -> Any:
    return st.list_tokens(principal)


@router.post(
    "/tokens",
    response_model=NewToken,
    status_code=201,
    summary="Create a token (its secret is shown once)",
    **needs("identity.admin"),
)
def create_token(st: Admin, request: TokenRequest) -> Any:
    return st.create_token(request.principal, name=request.name, expires_in=request.expires_in)


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke a token", **needs("identity.admin"))
def revoke_token(st: Admin, token_id: RowId) -> None:
    st.revoke_token(token_id)
