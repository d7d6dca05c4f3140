"""The district database's schema, as numbered steps applied in order to SQLite and to
PostgreSQL alike: each step once, in one transaction, under a lock so that receivers started
together migrate a database once; a database newer than this code is refused, not guessed at.

A step is written in SQLite's dialect; `for_postgres` derives PostgreSQL's from it (types,
identity keys), so the two schemas cannot drift apart. Add a step; never edit a shipped one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from district.storage import StorageError

# Version 4 is the baseline: the schema as it stood when migrations were introduced (1: the
# events, 2: quarantine_totals, 3: privacy_log, 4: the district page's tables). An SQLite
# database of versions 1 to 3 reaches it by the same CREATE ... IF NOT EXISTS statements.
BASELINE = """
CREATE TABLE IF NOT EXISTS events (
    post TEXT NOT NULL, seq INTEGER NOT NULL, time TEXT NOT NULL, clock TEXT NOT NULL,
    kind TEXT NOT NULL, who TEXT, temp_c REAL, temp_raw_c REAL, screening TEXT, fault TEXT,
    ref INTEGER, photo INTEGER, data TEXT, received TEXT NOT NULL,
    PRIMARY KEY (post, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_time ON events (time);
CREATE TABLE IF NOT EXISTS lost (
    post TEXT NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL, reported TEXT NOT NULL,
    PRIMARY KEY (post, first)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS posts (
    post TEXT PRIMARY KEY, contiguous INTEGER NOT NULL DEFAULT 0,
    max_seq INTEGER NOT NULL DEFAULT 0, events INTEGER NOT NULL DEFAULT 0,
    batches INTEGER NOT NULL DEFAULT 0, duplicates INTEGER NOT NULL DEFAULT 0,
    alerts INTEGER NOT NULL DEFAULT 0, last_alert INTEGER, state TEXT, status TEXT,
    last_seen TEXT);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY, received TEXT NOT NULL, topic TEXT NOT NULL, post TEXT,
    reason TEXT NOT NULL, size INTEGER NOT NULL, payload BLOB);
CREATE INDEX IF NOT EXISTS quarantine_by_post ON quarantine (post);
CREATE INDEX IF NOT EXISTS quarantine_by_received ON quarantine (received);
CREATE TABLE IF NOT EXISTS quarantine_totals (
    post TEXT PRIMARY KEY, payloads INTEGER NOT NULL, bytes INTEGER NOT NULL,
    last TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS privacy_log (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, action TEXT NOT NULL, class TEXT NOT NULL,
    records INTEGER NOT NULL, detail TEXT NOT NULL);
-- login and roles (issue 12): users, server-side sessions, lockouts, the audit trail
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, password TEXT NOT NULL,
    created TEXT NOT NULL, changed TEXT NOT NULL, last_login TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY, username TEXT NOT NULL, created REAL NOT NULL,
    seen REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (username);
CREATE TABLE IF NOT EXISTS login_failures (
    key TEXT PRIMARY KEY, failures INTEGER NOT NULL, first REAL NOT NULL,
    locked_until REAL NOT NULL, lockouts INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, username TEXT, action TEXT NOT NULL,
    detail TEXT NOT NULL);
-- emergencies (issue 12): operators' actions; small partial indexes find Darurat fast
CREATE TABLE IF NOT EXISTS emergency_actions (
    id INTEGER PRIMARY KEY, post TEXT NOT NULL, seq INTEGER NOT NULL, action TEXT NOT NULL,
    at TEXT NOT NULL, "user" TEXT NOT NULL, note TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS emergency_actions_by_event ON emergency_actions (post, seq);
CREATE INDEX IF NOT EXISTS events_emergencies ON events (time) WHERE kind = 'emergency';
CREATE INDEX IF NOT EXISTS events_voids ON events (post, ref) WHERE kind = 'void';
CREATE INDEX IF NOT EXISTS events_handled ON events (post, ref)
    WHERE kind = 'note' AND data LIKE '%"emergency"%';
-- posts in their regions (issue 12): each receiver's link to the broker, for the page
CREATE TABLE IF NOT EXISTS receiver_link (
    receiver TEXT PRIMARY KEY, broker TEXT NOT NULL, state TEXT NOT NULL,
    since TEXT NOT NULL) WITHOUT ROWID;
-- daily figures (issue 12): each post's counts per local day, kept as batches arrive
-- (district.daily); they outlive the events a retention purge deletes
CREATE TABLE IF NOT EXISTS daily (
    post TEXT NOT NULL, day TEXT NOT NULL,
    first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
    events INTEGER NOT NULL DEFAULT 0, voided INTEGER NOT NULL DEFAULT 0,
    in_resident INTEGER NOT NULL DEFAULT 0, in_visitor INTEGER NOT NULL DEFAULT 0,
    out_resident INTEGER NOT NULL DEFAULT 0, out_visitor INTEGER NOT NULL DEFAULT 0,
    normal INTEGER NOT NULL DEFAULT 0, fevers INTEGER NOT NULL DEFAULT 0,
    faults INTEGER NOT NULL DEFAULT 0, refused INTEGER NOT NULL DEFAULT 0,
    sensor_faults INTEGER NOT NULL DEFAULT 0, emergencies INTEGER NOT NULL DEFAULT 0,
    visitors_inside INTEGER NOT NULL DEFAULT 0, visitors_waiting INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (post, day)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS daily_by_day ON daily (day);
CREATE INDEX IF NOT EXISTS events_visits ON events (post, seq, time, kind, who, screening, ref)
    WHERE kind IN ('void', 'recheck', 'departed') OR (kind IN ('in', 'out') AND who = 'visitor');
-- restore without loss (issue 13): the database's epoch, named in every ack (district.epoch)
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""

# What PostgreSQL lacks of SQLite's SQL that the district's shared modules use: the scalar
# two-argument min() and max() (beside the aggregates of the same name) and json_extract()
# of a top-level key. Created with the baseline, in the `posko` schema's search path.
POSTGRES_FUNCTIONS = """
CREATE OR REPLACE FUNCTION max(a BIGINT, b BIGINT) RETURNS BIGINT
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT GREATEST(a, b)';
CREATE OR REPLACE FUNCTION min(a BIGINT, b BIGINT) RETURNS BIGINT
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT LEAST(a, b)';
CREATE OR REPLACE FUNCTION max(a DOUBLE PRECISION, b DOUBLE PRECISION) RETURNS DOUBLE PRECISION
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT GREATEST(a, b)';
CREATE OR REPLACE FUNCTION min(a DOUBLE PRECISION, b DOUBLE PRECISION) RETURNS DOUBLE PRECISION
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT LEAST(a, b)';
CREATE OR REPLACE FUNCTION max(a TEXT, b TEXT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT GREATEST(a, b)';
CREATE OR REPLACE FUNCTION min(a TEXT, b TEXT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT LEAST(a, b)';
CREATE OR REPLACE FUNCTION json_extract(doc TEXT, path TEXT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS 'SELECT CASE WHEN left(ltrim(doc), 1) = ''{'' THEN doc::jsonb ->> substr(path, 3) END';
"""

# The table that records each applied step (both backends; SQLite keeps user_version too).
HISTORY = (
    "CREATE TABLE IF NOT EXISTS schema_history (version INTEGER PRIMARY KEY, "
    "name TEXT NOT NULL, applied TEXT NOT NULL)"
)


@dataclass(frozen=True)
class Step:
    version: int
    name: str
    sqlite: str  # statements separated by ";" at line ends
    postgres: str | None = None  # None: derived from `sqlite` by `for_postgres`
    sqlite_only: str = ""  # what SQLite alone needs (data carried over from old versions)

    def statements(self, backend: str) -> list[str]:
        if backend == "sqlite":
            return split(self.sqlite + ";\n" + self.sqlite_only)
        text = self.postgres if self.postgres is not None else for_postgres(self.sqlite)
        return split(text)


def split(script: str) -> list[str]:
    """The statements of a script (";" ends one at a line's end; "--" lines are comments)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in re.split(r";\s*\n", "\n".join(lines) + "\n") if s.strip()]


_TYPES = (
    (re.compile(r"\bINTEGER PRIMARY KEY\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    (re.compile(r"\)\s*WITHOUT ROWID"), ")"),
)


def for_postgres(sqlite: str) -> str:
    """A step's SQLite DDL in PostgreSQL's words: 64-bit integers, identity keys for
    SQLite's rowid keys, BYTEA, no WITHOUT ROWID (every PostgreSQL table is a heap)."""
    for pattern, replacement in _TYPES:
        sqlite = pattern.sub(replacement, sqlite)
    return sqlite


STEPS: tuple[Step, ...] = (
    Step(
        4,
        "baseline: events, posts, lost ranges, quarantine, privacy log, page tables, epoch",
        BASELINE,
        postgres=for_postgres(BASELINE) + POSTGRES_FUNCTIONS,
        # A version 1 database kept no totals: count the rows it kept.
        sqlite_only=(
            "INSERT OR IGNORE INTO quarantine_totals SELECT coalesce(post, ''), COUNT(*), "
            "SUM(size), MAX(received) FROM quarantine GROUP BY coalesce(post, '')"
        ),
    ),
    Step(
        5, "lost ranges keep the reason their post gave", "ALTER TABLE lost ADD COLUMN reason TEXT"
    ),
)
LATEST = STEPS[-1].version


def too_new(found: int) -> StorageError:
    return StorageError(
        f"the district database has schema version {found}, newer than this Posko knows "
        f"({LATEST}): upgrade Posko on this machine, or open a backup made for this version"
    )


def pending(found: int) -> list[Step]:
    """The steps a database at version `found` still needs, in order (0: a new database)."""
    if found > LATEST:
        raise too_new(found)
    return [step for step in STEPS if step.version > found]
