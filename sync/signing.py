"""The district's Ed25519 keys: making and loading them, their key id, signing and checking.

The district signs every ack with its private key (`district.key`, PEM PKCS#8, mode 0600);
a post pins the district's public keys (`district.pub`, PEM SubjectPublicKeyInfo) and
believes only the acks one of them signed. Both files are what `openssl pkey` reads too.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from sync.batch import SyncError

log = logging.getLogger(__name__)

PRIVATE_NAME = "district.key"
PUBLIC_NAME = "district.pub"
MAX_KEY_FILE = 16 * 1024  # a PEM key is a few hundred bytes; anything larger is not one


class KeyFileError(SyncError, ValueError):
    """A key file that is missing, unreadable or not an Ed25519 key of the right kind."""


def key_id(public: Ed25519PublicKey) -> str:
    """The first 8 bytes of SHA-256 of the raw 32-byte public key, in hex (16 characters)."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:8].hex()


@dataclass(frozen=True)
class Signer:
    """The district's private key and its key id."""

    private: Ed25519PrivateKey
    key_id: str

    @classmethod
    def of(cls, private: Ed25519PrivateKey) -> Signer:
        return cls(private, key_id(private.public_key()))

    @classmethod
    def from_file(cls, path: str | Path) -> Signer:
        """The signer in a PEM private key file; KeyFileError says what is wrong with it."""
        path = Path(path)
        data = _read(path, "signing key")
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as e:
            raise KeyFileError(f"{path} is not an unencrypted PEM private key: {e}") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise KeyFileError(f"{path} is not an Ed25519 key")
        if path.stat().st_mode & 0o077:
            log.warning("%s can be read by other users: chmod 600 it", path)
        return cls.of(private)

    @property
    def public(self) -> PublicKey:
        return PublicKey.of(self.private.public_key())

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


@dataclass(frozen=True)
class PublicKey:
    """One of the district's public keys, as a post pins it."""

    key: Ed25519PublicKey
    key_id: str

    @classmethod
    def of(cls, public: Ed25519PublicKey) -> PublicKey:
        return cls(public, key_id(public))

    @classmethod
    def from_file(cls, path: str | Path) -> PublicKey:
        path = Path(path)
        data = _read(path, "district key")
        try:
            public = serialization.load_pem_public_key(data)
        except (ValueError, TypeError) as e:
            raise KeyFileError(f"{path} is not a PEM public key: {e}") from None
        if not isinstance(public, Ed25519PublicKey):
            raise KeyFileError(f"{path} is not an Ed25519 public key")
        return cls.of(public)

    def verify(self, data: bytes, signature: bytes) -> bool:
        try:
            self.key.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def pem(self) -> bytes:
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def keygen(directory: str | Path) -> tuple[Path, Path]:
    """Write a new `district.key` (0600) and `district.pub` into `directory`; never
    overwrite a key (KeyFileError), since every post pins the old one."""
    directory = Path(directory)
    private_path, public_path = directory / PRIVATE_NAME, directory / PUBLIC_NAME
    for path in (private_path, public_path):
        if path.exists():
            raise KeyFileError(f"{path} exists: a key is never overwritten (rotate into a new DIR)")
    directory.mkdir(parents=True, exist_ok=True)
    signer = Signer.of(Ed25519PrivateKey.generate())
    pem = signer.private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_new(private_path, pem, 0o600)
    _write_new(public_path, signer.public.pem(), 0o644)
    return private_path, public_path


def _read(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_KEY_FILE + 1)
    except OSError as e:
        raise KeyFileError(f"cannot read the {what} {path}: {e.strerror or e}") from None
    if len(data) > MAX_KEY_FILE:
        raise KeyFileError(f"{path} is too large to be a key")
    return data


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # whatever the umask says
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
