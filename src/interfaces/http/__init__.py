"""Chronicle http layer: the REST API (`create_app`) served by `chronicle serve`.

`create_app` is imported on first use: the dashboard's modules import this package's `auth`,
and `interfaces.http.app` imports the dashboard, so an eager import here would be a cycle.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from interfaces.http.app import create_app  # noqa: PLC0415 - see the docstring

        return create_app
    raise AttributeError(name)
