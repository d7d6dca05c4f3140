"""The camera seam: a `Camera` protocol, the Raspberry Pi camera via picamera2, and a fake.

picamera2 needs libcamera from Raspberry Pi OS, so it is imported only when a `PiCamera`
opens; this module imports on any laptop.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Protocol, Self

from sensors.errors import CameraBusy, CameraError

log = logging.getLogger(__name__)

DRIVERS = ("none", "picamera2", "fake")
INSTALL_HINT = (
    "picamera2 is not installed: on Raspberry Pi OS run `sudo apt install python3-picamera2` "
    "(and create the virtualenv with --system-site-packages), or set the camera to none"
)
_FORMATS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png"}

# libcamera lets one process hold a camera once: one PiCamera owns it at a time.
_ownership = threading.Lock()
_owner: PiCamera | None = None


class Camera(Protocol):
    """Anything that can take a still photo into a file."""

    def capture(self, path: Path) -> None: ...

    def close(self) -> None: ...


class PiCamera:
    """The Raspberry Pi camera module; opens on the first capture, holds it until close()."""

    def __init__(self, resolution: tuple[int, int] = (1280, 720)) -> None:
        self.resolution = resolution
        self._camera: Any = None
        self._lock = threading.Lock()  # one capture at a time

    def open(self) -> None:
        """Claim the camera for this process and start it; idempotent."""
        with self._lock:
            if self._camera is None:
                _claim(self)
                try:
                    self._camera = self._start()
                except BaseException:
                    _release(self)
                    raise

    def capture(self, path: Path) -> None:
        """Take one still into `path`; a power cut leaves either the whole file or none."""
        path = Path(path)
        fmt = _FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise CameraError(f"cannot save a photo as {path.suffix!r}: use .jpg or .png")
        self.open()
        with self._lock:
            if self._camera is None:
                raise CameraError("the camera was closed during the capture")
            _write_atomically(path, lambda out: self._camera.capture_file(out, format=fmt))

    def close(self) -> None:
        """Stop the camera and give up ownership; idempotent."""
        with self._lock:
            camera, self._camera = self._camera, None
            if camera is None:
                return
            _quietly(camera.stop, "stopping the camera")
            _quietly(camera.close, "closing the camera")
            _release(self)
            log.info("camera closed")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> Any:
        try:
            from picamera2 import Picamera2  # type: ignore[import-not-found, unused-ignore]
        except ImportError as exc:
            raise CameraError(INSTALL_HINT) from exc
        camera = None
        try:
            camera = Picamera2()
            config = camera.create_still_configuration(main={"size": self.resolution})
            camera.configure(config)
            camera.start()
        except Exception as exc:
            if camera is not None:
                _quietly(camera.close, "closing a camera that failed to start")
            raise CameraError(f"the camera could not start: {exc}") from exc
        log.info("camera started at %dx%d", *self.resolution)
        return camera


class FakeCamera:
    """Writes a tiny valid JPEG per capture and remembers the paths; `fail=True` fails."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.captured: list[Path] = []
        self.closed = False

    def capture(self, path: Path) -> None:
        if self.fail:
            raise CameraError("fake camera told to fail")
        _write_atomically(Path(path), lambda out: out.write(TINY_JPEG))
        self.captured.append(Path(path))

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_camera(driver: str) -> Camera | None:
    """The camera the configuration names: "none" (the privacy default), "picamera2", "fake"."""
    if driver == "none":
        return None
    if driver == "picamera2":
        return PiCamera()
    if driver == "fake":
        return FakeCamera()
    raise CameraError(f"unknown camera driver {driver!r}: choose one of {', '.join(DRIVERS)}")


def _claim(camera: PiCamera) -> None:
    global _owner
    with _ownership:
        if _owner is not None and _owner is not camera:
            raise CameraBusy("the camera is already open in this process; close it first")
        _owner = camera


def _release(camera: PiCamera) -> None:
    global _owner
    with _ownership:
        if _owner is camera:
            _owner = None


def _quietly(action: Callable[[], object], what: str) -> None:
    """Run a shutdown step whose failure must not stop the rest of the shutdown."""
    try:
        action()
    except Exception:
        log.warning("%s failed", what, exc_info=True)


def _write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through `write(file)` into a .part file, fsync, then rename it over `path`."""
    part = path.with_suffix(path.suffix + ".part")
    try:
        with open(part, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, path)
        _fsync_dir(path.parent)
    except CameraError:
        part.unlink(missing_ok=True)
        raise
    except Exception as exc:
        part.unlink(missing_ok=True)
        raise CameraError(f"capture to {path} failed: {exc}") from exc


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return  # directories cannot be opened for fsync elsewhere
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tiny_jpeg() -> bytes:
    """A complete baseline JPEG of one grey pixel (decodes with libjpeg), 141 bytes."""

    def segment(marker: int, payload: bytes) -> bytes:
        return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload

    one_code = bytes([1] + [0] * 15) + b"\x00"  # a Huffman table with one 1-bit code
    return b"".join(
        [
            b"\xff\xd8",  # SOI
            segment(0xDB, b"\x00" + bytes([1] * 64)),  # quantisation table, all ones
            segment(0xC0, b"\x08\x00\x01\x00\x01\x01\x01\x11\x00"),  # 1x1, one component
            segment(0xC4, b"\x00" + one_code),  # DC table
            segment(0xC4, b"\x10" + one_code),  # AC table
            segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),  # start of scan
            b"\x3f",  # DC difference 0, end of block, padded with ones
            b"\xff\xd9",  # EOI
        ]
    )


TINY_JPEG = _tiny_jpeg()
