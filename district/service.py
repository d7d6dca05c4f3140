"""The district as one running service: the receiver on the broker, storing into the
storage `--db` names, and optionally the district page; started in order, closed in reverse.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from district.backends import open_storage
from district.report import DEFAULT_ZONE
from district.server import District
from sync.codec import MAX_PAYLOAD
from sync.options import Link

if TYPE_CHECKING:  # flask and waitress are imported only when the page is served
    from district.web import PageServer

log = logging.getLogger(__name__)


class Service:
    """start() it, close() it (idempotent; also when start() failed half-way)."""

    def __init__(
        self,
        db: str,
        link: Link,
        *,
        share: str | None = None,
        max_payload: int = MAX_PAYLOAD,
        web: tuple[str, int] | None = None,
        zone: str = DEFAULT_ZONE,
    ) -> None:
        self.db = db
        self.link = link
        self.share = share
        self.max_payload = max_payload
        self.web = web
        self.zone = zone
        self.receiver: District | None = None
        self.page: PageServer | None = None
        self._closed = False

    def start(self) -> Service:
        try:
            self.receiver = District(
                open_storage(self.db), self.link, share=self.share, max_payload=self.max_payload
            )
            self.receiver.start()
            if self.web is not None:
                from district.web import PageServer, create_app

                host, port = self.web
                self.page = PageServer(create_app(self.db, zone=self.zone), host, port).start()
        except BaseException:
            self.close()
            raise
        return self

    def describe(self) -> str:
        """One line for the operator: where it listens and stores."""
        page = f", page at {self.page.url}" if self.page is not None else ""
        return f"district receiver on {self.link.address}, database {self.db}{page}"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self.page is not None:
                self.page.close()
        finally:
            if self.receiver is not None:
                self.receiver.close()

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
