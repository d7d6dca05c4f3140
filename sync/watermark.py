"""The synced watermark saved by a thread of its own, so that an ack's fsync never stalls
the sending of the next batch. Saving late is safe: after a crash the Pi only offers the
district a few events it already has, which it skips."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from edge.store import EventStore
from sensors.errors import StoreError

log = logging.getLogger(__name__)

RETRY_S = 5.0


class Watermark:
    """`advance(seq)` never blocks; `flush()` waits until it is durable; `close()` flushes."""

    def __init__(self, store: EventStore, on_saved: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.on_saved = on_saved
        self._want = store.acked
        self._cond = threading.Condition()
        self._saving = threading.Lock()  # a save in progress: a rewind waits for it to end
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="sync-watermark", daemon=True)

    def start(self) -> Watermark:
        self._thread.start()
        return self

    def advance(self, seq: int) -> None:
        with self._cond:
            if seq > self._want:
                self._want = seq
                self._cond.notify()

    def rewind(self, seq: int, epoch: str) -> int:
        """The district's new epoch holds only up to seq: save that now (never overtaken
        by a save of the old, higher watermark); returns where the watermark was."""
        with self._saving:
            with self._cond:
                self._want = seq
            return self.store.rewind(seq, epoch)

    def adopt(self, epoch: str) -> None:
        with self._saving:
            self.store.adopt_epoch(epoch)

    def flush(self, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.store.acked >= self._want, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Save what is pending, then stop. Idempotent."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._want > self.store.acked or self._closing)
                want = self._want
                if want <= self.store.acked:
                    return  # closing, nothing left to save
            try:
                with self._saving:
                    with self._cond:
                        want = self._want  # a rewind may have lowered it meanwhile
                    self.store.acknowledge(want)
            except StoreError as e:
                log.error("cannot save the acknowledgement of seq %d: %s", want, e)
                with self._cond:
                    if self._closing:
                        return
                    self._cond.wait(RETRY_S)
                continue
            with self._cond:
                self._cond.notify_all()
            self.on_saved()
