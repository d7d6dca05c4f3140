"""Tests for the camera seam: lazy picamera2 import, one owner per process, atomic files.

picamera2 only exists on Raspberry Pi OS, so a fake module goes into `sys.modules`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path
from typing import ClassVar

import pytest

from sensors.camera import FakeCamera, PiCamera, open_camera
from sensors.errors import CameraBusy, CameraError

ROOT = Path(__file__).resolve().parents[1]
PHOTO = b"\xff\xd8fake picamera2 photo\xff\xd9"


class FakePicamera2:
    """Records what the adapter asks of the camera; `capture_file` writes PHOTO."""

    instances: ClassVar[list[FakePicamera2]] = []
    fail_on: ClassVar[str | None] = None  # name of a method that should raise

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self._check("__init__")
        type(self).instances.append(self)

    def _check(self, name: str) -> None:
        if self.fail_on == name:
            raise RuntimeError(f"{name} failed")

    def create_still_configuration(self, main: dict[str, object]) -> dict[str, object]:
        self.calls.append(("create_still_configuration", main))
        return {"still": main}

    def configure(self, config: object) -> None:
        self.calls.append(("configure", config))

    def start(self) -> None:
        self._check("start")
        self.calls.append(("start", None))

    def capture_file(self, output: object, format: str | None = None) -> None:
        self.calls.append(("capture_file", format))
        if isinstance(output, (str, Path)):
            Path(output).write_bytes(PHOTO)
        else:
            output.write(PHOTO[:5])  # type: ignore[attr-defined]
            self._check("capture_file")
            output.write(PHOTO[5:])  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.calls.append(("stop", None))

    def close(self) -> None:
        self.calls.append(("close", None))


@pytest.fixture
def picamera2(monkeypatch):
    """Install a fake `picamera2` module; yields the FakePicamera2 class."""
    module = types.ModuleType("picamera2")
    fake = type("Picamera2", (FakePicamera2,), {"instances": [], "fail_on": None})
    module.Picamera2 = fake  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", module)
    return fake


@pytest.fixture
def cameras():
    """Make PiCameras that are all closed after the test, so ownership never leaks."""
    made: list[PiCamera] = []

    def make(**kwargs: object) -> PiCamera:
        made.append(PiCamera(**kwargs))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for camera in made:
        camera.close()


def names(camera: FakePicamera2) -> list[str]:
    return [name for name, _ in camera.calls]


def test_camera_import_does_not_import_picamera2(tmp_path: Path) -> None:
    (tmp_path / "picamera2.py").write_text("")  # importable, so only laziness keeps it out
    code = "import sys, sensors.camera; print('picamera2' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_camera_capture_writes_the_file(picamera2, cameras, tmp_path: Path) -> None:
    photo = tmp_path / "entry-17.jpg"
    cameras().capture(photo)
    assert photo.read_bytes() == PHOTO
    assert list(tmp_path.iterdir()) == [photo]  # no .part left behind


def test_camera_opens_lazily_and_starts_once(picamera2, cameras, tmp_path: Path) -> None:
    camera = cameras(resolution=(640, 480))
    assert picamera2.instances == []
    camera.capture(tmp_path / "a.jpg")
    camera.capture(tmp_path / "b.jpg")
    [device] = picamera2.instances
    assert device.calls[:3] == [
        ("create_still_configuration", {"size": (640, 480)}),
        ("configure", {"still": {"size": (640, 480)}}),
        ("start", None),
    ]
    assert names(device).count("start") == 1
    assert device.calls[3:] == [("capture_file", "jpeg")] * 2


def test_camera_second_owner_is_busy(picamera2, cameras, tmp_path: Path) -> None:
    cameras().capture(tmp_path / "a.jpg")
    with pytest.raises(CameraBusy):
        cameras().capture(tmp_path / "b.jpg")
    assert len(picamera2.instances) == 1


def test_camera_reopens_after_close(picamera2, cameras, tmp_path: Path) -> None:
    with cameras() as first:
        first.capture(tmp_path / "a.jpg")
    cameras().capture(tmp_path / "b.jpg")
    assert len(picamera2.instances) == 2


def test_camera_close_is_idempotent(picamera2, cameras, tmp_path: Path) -> None:
    camera = cameras()
    camera.capture(tmp_path / "a.jpg")
    camera.close()
    camera.close()
    assert names(picamera2.instances[0])[-2:] == ["stop", "close"]
    assert names(picamera2.instances[0]).count("close") == 1


def test_camera_missing_picamera2_is_a_helpful_error(monkeypatch, cameras, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(CameraError, match="sudo apt install python3-picamera2"):
        cameras().capture(tmp_path / "a.jpg")


def test_camera_failed_open_releases_ownership(picamera2, cameras, tmp_path: Path) -> None:
    picamera2.fail_on = "start"
    with pytest.raises(CameraError, match="could not start"):
        cameras().open()
    picamera2.fail_on = None
    cameras().capture(tmp_path / "a.jpg")
    assert (tmp_path / "a.jpg").exists()


def test_camera_failed_start_closes_the_device(picamera2, cameras) -> None:
    picamera2.fail_on = "start"
    with pytest.raises(CameraError):
        cameras().open()
    assert names(picamera2.instances[0])[-1] == "close"


def test_camera_failed_capture_leaves_no_file(picamera2, cameras, tmp_path: Path) -> None:
    camera = cameras()
    camera.open()
    picamera2.fail_on = "capture_file"
    with pytest.raises(CameraError, match="capture_file failed"):
        camera.capture(tmp_path / "a.jpg")
    assert list(tmp_path.iterdir()) == []


def test_camera_unknown_suffix_is_refused(picamera2, cameras, tmp_path: Path) -> None:
    with pytest.raises(CameraError, match=r"\.gif"):
        cameras().capture(tmp_path / "a.gif")
    assert picamera2.instances == []


def test_fake_camera_writes_a_jpeg(tmp_path: Path) -> None:
    photo = tmp_path / "a.jpg"
    FakeCamera().capture(photo)
    data = photo.read_bytes()
    assert data[:2] == b"\xff\xd8"
    assert data[-2:] == b"\xff\xd9"


def test_fake_camera_records_captures(tmp_path: Path) -> None:
    camera = FakeCamera()
    camera.capture(tmp_path / "a.jpg")
    camera.capture(tmp_path / "b.jpg")
    assert camera.captured == [tmp_path / "a.jpg", tmp_path / "b.jpg"]


def test_fake_camera_can_fail(tmp_path: Path) -> None:
    camera = FakeCamera(fail=True)
    with pytest.raises(CameraError):
        camera.capture(tmp_path / "a.jpg")
    assert camera.captured == []
    assert not (tmp_path / "a.jpg").exists()


def test_open_camera_none_is_no_camera() -> None:
    assert open_camera("none") is None


@pytest.mark.parametrize(("driver", "kind"), [("fake", FakeCamera), ("picamera2", PiCamera)])
def test_open_camera_builds_the_named_driver(
    driver: str, kind: type[FakeCamera | PiCamera]
) -> None:
    camera = open_camera(driver)
    assert isinstance(camera, kind)
    camera.close()


def test_open_camera_unknown_driver_is_an_error() -> None:
    with pytest.raises(CameraError, match="webcam"):
        open_camera("webcam")
