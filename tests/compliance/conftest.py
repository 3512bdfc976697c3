"""Fixtures of the compliance tests: the small credit-risk data set, written once per session."""

from __future__ import annotations

import pytest

from tests.compliance.credit_fixture import Credit, make_credit


@pytest.fixture(scope="session")
def credit(tmp_path_factory: pytest.TempPathFactory) -> Credit:
    return make_credit(tmp_path_factory.mktemp("credit"))
