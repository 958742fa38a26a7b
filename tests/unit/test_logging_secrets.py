"""Tracebacks in logs show code, never the values of local variables (passwords, tokens)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

from infrastructure.logging import configure_logging

# Built at run time: rich shows the source lines of a traceback, and the source may hold them.
SECRET = "hunter2-" + "local-secret"
ATTEMPT = "x" * 3 + "-attempt"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)


def check_password(given: str) -> None:
    secret = SECRET
    if given != secret:
        msg = "wrong password"
        raise PermissionError(msg)


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_tracebacks_show_no_local_variables(fmt: str, capsys: pytest.CaptureFixture[str]):
    configure_logging(fmt)
    # A logger cached now would keep this set-up in later tests (and their capture_logs).
    structlog.configure(cache_logger_on_first_use=False)
    try:
        check_password(ATTEMPT)
    except PermissionError:
        structlog.get_logger("chronicle.test").exception("login failed")
        # Dramatiq and other libraries log through the standard library.
        logging.getLogger("dramatiq.test").exception("login failed")
    err = capsys.readouterr().err
    assert err.count("wrong password") >= 2  # both tracebacks were rendered
    assert "check_password" in err
    assert SECRET not in err
    assert ATTEMPT not in err
