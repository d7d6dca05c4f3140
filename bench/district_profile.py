"""`posko district run` under cProfile, every thread of it (the intake's decode and storage
stages, paho's network thread), for bench/district.py --profile: the receiver's costliest
functions by own time go to OUT (pstats text) when it stops.

Usage: python bench/district_profile.py OUT district run --db ... (posko's arguments)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cProfile
import io
import pstats
import threading
from typing import Any

PROFILES: list[cProfile.Profile] = []


def _start(*_: Any) -> None:
    """Each new thread's first event: profile that thread from here on."""
    profile = cProfile.Profile()
    PROFILES.append(profile)
    profile.enable()


def main() -> int:
    out, args = sys.argv[1], sys.argv[2:]
    from posko.cli import main as posko

    threading.setprofile(_start)
    _start()
    try:
        return posko(args)
    finally:
        for profile in PROFILES:
            profile.disable()
        text = io.StringIO()
        stats = pstats.Stats(PROFILES[0], stream=text)
        for profile in PROFILES[1:]:
            stats.add(profile)
        stats.sort_stats("tottime").print_stats(40)
        Path(out).write_text(text.getvalue())


if __name__ == "__main__":
    sys.exit(main())
