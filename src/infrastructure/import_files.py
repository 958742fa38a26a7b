"""Uploaded import files on disk, in a folder the API and the workers share."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import BinaryIO
from uuid import UUID

from application.imports.service import UploadTooLargeError
from domain.shared import NotFoundError

_BLOCK = 1024 * 1024
_STORED_NAME = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.csv$")


def _size(limit: int) -> str:
    return f"{limit / 1024 / 1024:.0f} MB" if limit >= 1024 * 1024 else f"{limit} bytes"


class LocalImportFiles:
    """ImportFiles in a folder: one `<import id>.csv` per upload, written then renamed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def save(self, import_id: UUID, stream: BinaryIO, *, max_bytes: int) -> tuple[str, int]:
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"{import_id}.csv"
        partial = self.root / f".{name}.part"
        size = 0
        try:
            with partial.open("wb") as out:
                while block := stream.read(_BLOCK):
                    size += len(block)
                    if size > max_bytes:
                        raise UploadTooLargeError(
                            f"the file is larger than the upload limit of {_size(max_bytes)}"
                            " (CHRONICLE_IMPORT_MAX_BYTES)"
                        )
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            partial.replace(self.root / name)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        return name, size

    def _path(self, name: str) -> Path:
        # Stored names are ours (`<uuid>.csv`); anything else never reaches the disk.
        if not _STORED_NAME.fullmatch(name):
            raise NotFoundError(f"import file {name!r} not found")
        return self.root / name

    def open(self, name: str) -> BinaryIO:
        try:
            return self._path(name).open("rb")
        except FileNotFoundError:
            raise NotFoundError(f"import file {name!r} not found") from None

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError, NotFoundError):
            self._path(name).unlink()
