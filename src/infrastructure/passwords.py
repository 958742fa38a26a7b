"""Password hashing with argon2id (argon2-cffi, its default parameters)."""

from __future__ import annotations

import argon2
from argon2.exceptions import InvalidHashError, VerificationError


class Argon2idHasher:
    """PasswordHasher with argon2-cffi: salted argon2id, hashes in the PHC string format."""

    def __init__(self) -> None:
        self._hasher = argon2.PasswordHasher()  # type argon2id by default

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        # argon2-cffi compares in constant time and raises on a mismatch: a wrong password
        # (or a hash it cannot read) is an answer, not an error, to our callers.
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
