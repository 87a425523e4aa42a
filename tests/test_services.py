"""require_service: skip when a service is down, fail instead under REQUIRE_SERVICES=1."""

from __future__ import annotations

import pytest

from tests.services import require_service


def _down() -> None:
    raise ConnectionRefusedError("nobody home")


def test_available_service_returns_none(monkeypatch):
    monkeypatch.setenv("REQUIRE_SERVICES", "1")
    assert require_service("thing", lambda: True) is None
    assert require_service("thing", lambda: None) is None


@pytest.mark.parametrize("check", [_down, lambda: False])
def test_unavailable_service_skips_with_the_reason(monkeypatch, check):
    monkeypatch.delenv("REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="thing is not available"):
        require_service("thing", check)


def test_unavailable_service_fails_under_require_services(monkeypatch):
    monkeypatch.setenv("REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="nobody home.*REQUIRE_SERVICES=1"):
        require_service("thing", _down)
