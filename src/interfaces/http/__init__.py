"""Chronicle http layer: the REST API (`create_app`) served by `chronicle serve`."""

from interfaces.http.app import create_app

__all__ = ["create_app"]
