"""The runtimes of `posko run` and `posko district run`: each owns its parts, starts them in
order and stops them in reverse. The post's answers the one health check that systemd's
watchdog, `/healthz` and `posko status` use.

Order: the post (store, pins, sensors, station, buttons), the guard's page, the sync worker,
retention. Nothing is attached to another part at run time: each part is handed, when it is
made, the narrow view of the others it needs.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from typing import Any

from district.backends import open_storage
from district.emergencies import Rules as EmergencyRules
from district.intake import IntakeLimits
from district.metrics import MetricsServer
from district.registry import Registry
from district.report import DEFAULT_ZONE
from district.retention import Retention as DistrictRetention
from district.server import District
from district.storage import QuarantineLimits, shown
from district.web import PageServer
from district.web import create_app as create_district_app
from edge.config import Config
from edge.events import Kind
from edge.health import Health, check
from edge.post import Post
from edge.retention import Retention
from sensors.errors import PoskoError
from sync.acks import AcksUntrusted
from sync.codec import MAX_PAYLOAD
from sync.options import Link, SyncOptions, broker_address
from sync.signing import Signer
from sync.worker import SyncWorker
from web.app import create_app
from web.options import PageOptions
from web.overrides import PAGE_KEYS, load_overrides
from web.pin import pin_path
from web.server import WebServer

log = logging.getLogger(__name__)

RECORD_TIMEOUT_S = 30.0  # how long retention waits for the station to record a purge note
PAGE_PROBE_S = 3.0  # how long the watchdog waits for the page to answer over HTTP
# Kemenkes KMK HK.01.07/MENKES/382/2020: measure again at or above 37.3 °C, after 5 minutes.
KMK_THRESHOLD_C = 37.3
KMK_RECHECK_WAIT_S = 300


class Runtime:
    """Everything `posko run` owns for one data directory; `close()` is idempotent."""

    def __init__(self, config: Config, *, post: Post | None = None, page: bool = True) -> None:
        self.config = config
        self.post: Post | None = post
        self.page: WebServer | None = None
        self.sync: SyncWorker | None = None
        self.sync_off: str | None = None  # why sync is not running although a broker is set
        self.retention: Retention | None = None
        self._serve_page = page
        self._stack = ExitStack()

    def start(self, *, mock: bool = False) -> Runtime:
        """Open and start every part; on a failure, close what was started and raise."""
        announce_settings(self.config)
        try:
            if self.post is None:
                self.post = self._stack.enter_context(Post(self.config, mock=mock))
            if self._serve_page:
                self.page = self._start_page(self.post)
            self.sync = self._start_sync(self.post)
            self.retention = self._start_retention(self.post)
        except BaseException:
            self.close()
            raise
        return self

    @property
    def running_post(self) -> Post:
        if self.post is None:
            raise RuntimeError("the runtime has not been started")
        return self.post

    def health(self, *, probe_page: bool = False) -> Health:
        """The one health check. `probe_page` (the watchdog's, never `/healthz`'s, which
        would ask itself) also asks the page over HTTP: a live thread may serve nobody."""
        post = self.running_post
        answers = None
        if probe_page and self.page is not None and self.page.alive:
            answers = self.page.answers(PAGE_PROBE_S)
        return check(
            post.config.post.id,
            post.store,
            station=post.station,
            page=self.page,
            page_answers=answers,
            thermometer=post.thermometer_state,
        )

    def sync_state(self) -> dict[str, Any]:
        """The sync worker's view for the guard's screen (nothing when sync is off)."""
        worker = self.sync
        if worker is None:
            return (
                {"connected": False, "state": "off", "off": self.sync_off} if self.sync_off else {}
            )
        return {
            "connected": worker.state == "online",
            "state": worker.state,
            "error": worker.last_error,
            "acks_ignored": worker.acks.total,
        }

    # -- the parts -------------------------------------------------------------------

    def _start_page(self, post: Post) -> WebServer:
        """Serve the guard's page with waitress."""
        if not pin_path(post.data_dir).exists():
            log.warning(
                "no admin PIN yet: the page's settings stay locked until `posko set-pin` is run"
            )
        app = create_app(post.config, post, health=self.health, sync=self.sync_state)
        server = WebServer(app, post.config)
        try:
            server.start()
        except OSError as e:
            server.close()
            listen = PageOptions.from_config(post.config).listen
            raise PoskoError(f"cannot serve the guard's page on {listen}: {e.strerror or e}") from e
        self._stack.callback(server.close)
        return server

    def _start_sync(self, post: Post) -> SyncWorker | None:
        """The sync thread, woken by the station after each durable event."""
        config = post.config
        broker = broker_address(config)
        if not broker:
            log.info("sync is off: mqtt.broker is not set")
            return None
        options = SyncOptions.from_config(config)
        try:
            worker = SyncWorker(post.store, options, clock_state=post.clock.state)
        except AcksUntrusted as e:  # the station keeps running; the screen says why
            self.sync_off = str(e)
            log.error("%s", e)
            return None
        self._stack.callback(worker.close)
        post.station.subscribe(worker.notify)
        self._stack.callback(post.station.unsubscribe, worker.notify)
        worker.start()
        log.info("sync to %s started; %d events waiting", broker, post.store.pending)
        return worker

    def _start_retention(self, post: Post) -> Retention:
        """The thread that purges what UU PDP says must not be kept."""

        def record(data: dict[str, Any]) -> None:
            outcome = post.station.record(Kind.NOTE, data=data).result(RECORD_TIMEOUT_S)
            if outcome.event is None:
                log.error("retention: the purge was done but not recorded: %s", outcome.message)

        retention = Retention(post.store, lambda: post.config, record, post.clock.now)
        self._stack.callback(retention.close)
        return retention.start()

    # -- stopping --------------------------------------------------------------------

    def close(self) -> None:
        """Stop every part in the reverse order of starting. Idempotent."""
        self._stack.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def announce_settings(config: Config) -> None:
    """Log, one line each, the guard's page settings that override the configuration file,
    and warn when the screening rule departs from the Kemenkes decree."""
    for key, value in load_overrides(config.post.data_dir).items():
        if key in PAGE_KEYS and config.get(key) == value:  # a refused entry was logged already
            log.info("page setting %s = %r overrides the configuration file", key, value)
    screening = config.screening
    if screening.threshold_c != KMK_THRESHOLD_C:
        log.warning(
            "screening.threshold_c is %.1f °C: KMK HK.01.07/MENKES/382/2020 measures again at "
            "%.1f °C and above",
            screening.threshold_c,
            KMK_THRESHOLD_C,
        )
    if screening.recheck_wait_s != KMK_RECHECK_WAIT_S:
        log.warning(
            "screening.recheck_wait_s is %d s: KMK HK.01.07/MENKES/382/2020 measures again "
            "after %d minutes (%d s)",
            screening.recheck_wait_s,
            KMK_RECHECK_WAIT_S // 60,
            KMK_RECHECK_WAIT_S,
        )


class DistrictRuntime:
    """The district's receiver on the broker, storing into the storage `db` names, and
    optionally its page; start() it, close() it (idempotent, also after a failed start)."""

    def __init__(
        self,
        db: str,
        link: Link,
        *,
        share: str | None = None,
        max_payload: int = MAX_PAYLOAD,
        group_commit_ms: float = IntakeLimits.group_commit_ms,
        group_commit_max: int = IntakeLimits.group_commit_max,
        web: tuple[str, int] | None = None,
        metrics: tuple[str, int] | None = None,
        zone: str = DEFAULT_ZONE,
        signer: Signer | None = None,
        quarantine: QuarantineLimits | None = None,
        keep: DistrictRetention | None = None,
        registry: Registry | None = None,
        rules: EmergencyRules | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        self.rules = rules
        self.signer = signer
        self.quarantine = quarantine
        self.keep = keep or DistrictRetention()
        self.link = link
        self.share = share
        self.max_payload = max_payload
        self.intake = IntakeLimits(
            group_commit_ms=group_commit_ms, group_commit_max=group_commit_max
        )
        self.web = web
        self.metrics = metrics
        self.zone = zone
        self.receiver: District | None = None
        self.page: PageServer | None = None
        self.metrics_server: MetricsServer | None = None
        self._closed = False

    def start(self) -> DistrictRuntime:
        try:
            self.receiver = District(
                open_storage(self.db, zone=self.zone),  # the days of its daily figures
                self.link,
                share=self.share,
                max_payload=self.max_payload,
                intake=self.intake,
                signer=self.signer,
                quarantine=self.quarantine,
                keep=self.keep,
                post_states=self._post_states,
            )
            if self.signer is None:
                log.warning(
                    "acks go out unsigned (no --signing-key): posts believe them only with "
                    "mqtt.insecure_acks = true; make a key with `posko district keygen DIR`"
                )
            else:
                log.info("acks are signed with key %s", self.signer.key_id)
            self.receiver.start()
            if self.metrics is not None:
                self.metrics_server = self._start_metrics(*self.metrics)
            if self.web is not None:
                self.page = self._start_page(*self.web)
        except BaseException:
            self.close()
            raise
        return self

    def _start_page(self, host: str, port: int) -> PageServer:
        app = create_district_app(
            self.db, zone=self.zone, keep=self.keep, registry=self.registry, rules=self.rules
        )
        try:
            return PageServer(app, host, port).start()
        except OSError as e:  # one line naming the address, not waitress's bare errno text
            raise PoskoError(
                f"cannot serve the district page on {host}:{port}: {e.strerror or e}"
            ) from None

    def _post_states(self) -> list[dict[str, Any]]:
        """The posts as stored, for the metrics (a read-only connection of its own)."""
        storage = open_storage(self.db, read_only=True)
        try:
            return storage.posts()
        finally:
            storage.close()

    def _start_metrics(self, host: str, port: int) -> MetricsServer:
        assert self.receiver is not None
        try:
            return MetricsServer(self.receiver.metrics, host, port).start()
        except OSError as e:
            raise PoskoError(
                f"cannot serve the metrics on {host}:{port}: {e.strerror or e}"
            ) from None

    def describe(self) -> str:
        """One line for the operator: where it listens and stores."""
        page = f", page at {self.page.url}" if self.page is not None else ""
        served = self.metrics_server
        metrics = f", metrics at {served.url}" if served is not None else ""
        return f"district receiver on {self.link.address}, database {shown(self.db)}{page}{metrics}"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self.page is not None:
                self.page.close()
            if self.metrics_server is not None:
                self.metrics_server.close()
        finally:
            if self.receiver is not None:
                self.receiver.close()

    def __enter__(self) -> DistrictRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
