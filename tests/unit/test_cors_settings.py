"""CHRONICLE_CORS_ORIGINS: named origins only, written as a browser sends them."""

from __future__ import annotations

import pytest

from infrastructure.settings import SettingsError, load_settings


def origins(raw: str) -> tuple[str, ...]:
    return load_settings({"CHRONICLE_CORS_ORIGINS": raw}).cors_origins


def test_no_origins_by_default():
    assert load_settings({}).cors_origins == ()
    assert origins(" , ") == ()


def test_origins_are_read_as_a_browser_writes_them():
    assert origins("https://Ops.Example.com:443, http://localhost:5173,http://[::1]:8080") == (
        "https://ops.example.com",
        "http://localhost:5173",
        "http://[::1]:8080",
    )
    assert origins("http://a.example:80,http://a.example") == ("http://a.example",)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("*", "must name each origin"),
        ("https://*.example.com", "must name each origin"),
        ("https://ops.example.com/", "is not an origin"),
        ("https://ops.example.com/app", "is not an origin"),
        ("https://ops.example.com?x=1", "is not an origin"),
        ("ops.example.com", "is not an origin"),
        ("ftp://ops.example.com", "is not an origin"),
        ("https://", "is not an origin"),
        ("https://ops.example.com:99999", "is not scheme://host[:port]"),
        ("https://ops.example.com,null", "'null' is not an origin"),
    ],
)
def test_bad_origins_are_refused(raw: str, message: str):
    with pytest.raises(SettingsError, match="CHRONICLE_CORS_ORIGINS") as caught:
        origins(raw)
    assert message in str(caught.value)


def test_a_password_in_an_origin_is_not_repeated():
    with pytest.raises(SettingsError) as caught:
        origins("https://admin:hunter2@ops.example.com")
    assert "hunter2" not in str(caught.value)
    assert "no user name or password" in str(caught.value)


def test_the_admin_password_setting_is_checked_and_never_shown():
    secret = "a long enough secret"  # noqa: S105 - a test value
    settings = load_settings({"CHRONICLE_ADMIN_PASSWORD": secret})
    assert settings.admin_password == secret
    assert secret not in repr(settings)
    assert load_settings({}).admin_password is None
    with pytest.raises(SettingsError, match="CHRONICLE_ADMIN_PASSWORD") as caught:
        load_settings({"CHRONICLE_ADMIN_PASSWORD": "short-pw"})
    assert "short-pw" not in str(caught.value)
