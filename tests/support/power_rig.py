"""A disk whose power can be cut: ext4 on a loop device, copied as the device holds it.

The disk's image lies on a small "shelf" filesystem of its own; freezing the shelf (FIFREEZE)
holds every write the loop driver has not yet made, so a copy taken while it is frozen is
exactly what the disk had received, and nothing of the page cache above it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

FIFREEZE = 0xC0045877  # _IOWR('X', 119, int), the same on x86 and ARM
FITHAW = 0xC0045878
TOOLS = {  # command: the Debian package that provides it
    "losetup": "mount",
    "mount": "mount",
    "umount": "mount",
    "mkfs.ext4": "e2fsprogs",
    "e2fsck": "e2fsprogs",
    "cp": "coreutils",
}
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


class RigError(RuntimeError):
    """A command of the rig failed; its message holds the command and what it printed."""


def unavailable() -> str | None:
    """Why this machine cannot build the rig, or None if it can."""
    if os.geteuid() != 0:
        return f"loop devices and mount need root; running as uid {os.geteuid()}"
    missing = {pkg for tool, pkg in TOOLS.items() if not shutil.which(tool, path=SEARCH_PATH)}
    if missing:
        return f"missing Debian packages {' '.join(sorted(missing))} (`make system-deps`)"
    if not Path("/dev/loop-control").exists():
        return "no /dev/loop-control: this kernel or container offers no loop devices"
    return None


def run(*command: str | Path, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    """Run a command; RigError with what it printed if its exit status is not in `ok`."""
    argv = [str(part) for part in command]
    argv[0] = shutil.which(argv[0], path=SEARCH_PATH) or argv[0]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode not in ok:
        said = f"{done.stdout}{done.stderr}".strip()
        raise RigError(f"{' '.join(argv)} exited {done.returncode}: {said}")
    return done


class Mounts:
    """Loop devices and mounts, each undone in reverse order on close, even after a failure."""

    def __init__(self) -> None:
        self._undo = ExitStack()

    def attach(self, image: Path) -> str:
        device = run("losetup", "--find", "--show", image).stdout.strip()
        self._undo.callback(run, "losetup", "--detach", device)
        return device

    def mount(self, source: str, target: Path, *options: str) -> Path:
        target.mkdir(exist_ok=True)
        if target.is_mount():  # a second mount would hide the first, and unmount the wrong one
            raise RigError(f"{target} is already a mount point")
        run("mount", *options, source, target)
        self._undo.callback(unmount, target)
        return target

    def close(self) -> None:
        self._undo.close()


def unmount(target: Path) -> None:
    try:
        run("umount", target)
    except RigError:
        run("umount", "--lazy", target)  # still busy: detach it now, the kernel frees it later


@dataclass
class Boot:
    """A cut disk after the boot's filesystem check, mounted read-write at `root`."""

    root: Path
    replayed: bool  # e2fsck replayed the ext4 journal
    repaired: str | None  # what `e2fsck -p` repaired beyond the replay, if it did


class PowerRig:
    """A RAM-backed ext4 disk mounted at `live`, whose power a test cuts again and again.

    Layers, bottom up: a tmpfs; `shelf.img` on it, a journal-less ext4 on a loop device (the
    shelf, which can be frozen, while tmpfs cannot); `disk.img` on the shelf, the post's ext4
    (4 KiB blocks, default options, noatime: as on the Pi's SD card) on a second loop device.
    """

    def __init__(self, workdir: Path, disk_mib: int = 48) -> None:
        self.disk_mib = disk_mib
        self.ram = workdir / "ram"
        self.shelf = self.ram / "shelf"
        self.disk_image = self.shelf / "disk.img"
        self.live = self.ram / "live"
        self._mounts = Mounts()

    def start(self) -> PowerRig:
        """Build the layers and mount the disk; RigError (with everything undone) if refused."""
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _build(self) -> None:
        self.ram.mkdir(parents=True, exist_ok=True)
        room = 2 * self.disk_mib + 32  # the shelf, and a copy of the disk beside it
        self._mounts.mount("tmpfs", self.ram, "-t", "tmpfs", "-o", f"size={room}m,mode=0700")
        shelf_image = self.ram / "shelf.img"
        with shelf_image.open("wb") as f:
            f.truncate((self.disk_mib + 16) << 20)
        shelf_device = self._mounts.attach(shelf_image)
        run("mkfs.ext4", "-q", "-O", "^has_journal", shelf_device)
        self._mounts.mount(shelf_device, self.shelf)
        with self.disk_image.open("wb") as f:
            f.truncate(self.disk_mib << 20)
        disk_device = self._mounts.attach(self.disk_image)
        no_lazy_init = "lazy_itable_init=0,lazy_journal_init=0"  # no writes of its own later
        run("mkfs.ext4", "-q", "-b", "4096", "-E", no_lazy_init, disk_device)
        self._mounts.mount(disk_device, self.live, "-o", "noatime")

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """Hold every write to the disk's device from here on; the disk's filesystem and the
        processes on it go on (their syncs wait). In-flight writes finish before this returns."""
        fd = os.open(self.shelf, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.ioctl(fd, FIFREEZE, 0)
            try:
                yield
            finally:
                fcntl.ioctl(fd, FITHAW, 0)
        finally:
            os.close(fd)

    def copy_disk(self, image: Path) -> None:
        """Copy the disk as its device holds it (while `frozen`: the image a power cut leaves)."""
        run("cp", "--sparse=always", self.disk_image, image)

    @contextmanager
    def booted(self, image: Path, mountpoint: Path) -> Iterator[Boot]:
        """Check a cut disk as the Pi does at boot, prove it whole, and mount it read-write.

        `e2fsck -p` as systemd-fsck runs it (replay the journal, preen), then `e2fsck -f -n`,
        which must find nothing; RigError if either refuses the disk, or mount does.
        """
        mounts = Mounts()
        try:
            device = mounts.attach(image)
            boot = run("e2fsck", "-p", device, ok=(0, 1))  # 1: it repaired something, and said
            run("e2fsck", "-f", "-n", device)
            yield Boot(
                mounts.mount(device, mountpoint, "-o", "noatime"),
                replayed="recovering journal" in boot.stdout,
                repaired=boot.stdout.strip() if boot.returncode else None,
            )
        finally:
            mounts.close()

    def close(self) -> None:
        self._mounts.close()
