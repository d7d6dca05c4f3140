"""The district key pair of the tests: fixed, so that every test and child process agrees on
it without passing it around; a second and a stranger's pair for rotation and forgeries."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync.acks import AckTrust
from sync.signing import Signer


def _signer(seed: int) -> Signer:
    return Signer.of(Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32))


SIGNER = _signer(1)  # the district's key
NEXT_SIGNER = _signer(2)  # the district's next key (rotation)
STRANGER = _signer(3)  # a key no post pins
TRUST = AckTrust((SIGNER.public,))


def write_keys(directory: Path, signer: Signer = SIGNER) -> tuple[Path, Path]:
    """`district.key` (0600) and `district.pub` of `signer` in `directory`; their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    private, public = directory / "district.key", directory / "district.pub"
    pem = signer.private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    private.write_bytes(pem)
    private.chmod(0o600)
    public.write_bytes(signer.public.pem())
    return private, public


@functools.cache
def public_key_file() -> Path:
    """`district.pub` of SIGNER in a directory of its own, for settings and child processes."""
    directory = Path(tempfile.mkdtemp(prefix="posko-test-keys-"))
    atexit.register(shutil.rmtree, directory, True)
    return write_keys(directory)[1]
