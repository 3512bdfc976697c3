"""The permission policy: which roles grant what, in which scopes; and the README's table says the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelsteward.domain.lifecycle import ROLES
from modelsteward.governance.permissions import PERMISSIONS, Reach, allows, covering_scopes, matrix, permission

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_role_views_and_admin_does_everything() -> None:
    assert PERMISSIONS["catalog.read"].roles == ROLES
    assert all("admin" in p.roles for p in PERMISSIONS.values())
    assert PERMISSIONS["identity.admin"].roles == ("admin",)
    assert PERMISSIONS["audit.read"].roles == ("auditor", "admin")
    assert "viewer" not in {r for name, p in PERMISSIONS.items() if name != "catalog.read" for r in p.roles}


def test_a_grant_covers_its_model_its_unit_or_everything() -> None:
    scopes = covering_scopes("credit-risk", "consumer")
    assert scopes == {"global", "model:credit-risk", "unit:consumer"}
    assert allows([("data_scientist", "model:credit-risk")], "model.register", scopes)
    assert allows([("data_scientist", "unit:consumer")], "model.register", scopes)
    assert allows([("data_scientist", "global")], "model.register", scopes)
    assert not allows([("data_scientist", "model:other")], "model.register", scopes)
    assert not allows([("data_scientist", "unit:consumer")], "model.register", covering_scopes("credit-risk", None))
    assert not allows([("viewer", "global")], "model.register", scopes)  # the wrong role anywhere
    assert not allows([], "catalog.read", Reach.ANYWHERE)  # no grant: nothing but authenticating


def test_reads_about_nothing_in_particular_take_a_grant_anywhere_changes_a_global_one() -> None:
    on_one_model = [("operator", "model:credit-risk")]
    assert allows(on_one_model, "catalog.read", Reach.ANYWHERE)
    assert not allows(on_one_model, "monitor.manage", Reach.GLOBAL)
    assert allows([("operator", "global")], "monitor.manage", Reach.GLOBAL)


def test_an_unknown_permission_is_a_programming_error() -> None:
    with pytest.raises(KeyError, match="unknown permission"):
        permission("model.delete")


def test_the_readme_table_is_the_policy() -> None:
    text = README.read_text(encoding="utf-8")
    for name, description, granted in matrix():
        row = f"| `{name}` | {description} | " + " | ".join("✓" if granted[r] else "" for r in ROLES) + " |"
        assert row in text, f"README's 'Roles and permissions' table is out of date for {name}"
