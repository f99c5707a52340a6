"""Store visits kept materialised in SQLite: one row per entry-to-exit stay.

A *store visit* (see :mod:`core.analytics`) joins a customer's zone visits
(rows of ``visits``) while each starts within the gap (``visit_gap_seconds``,
30 min) of the latest moment they were seen so far. Equivalently, each zone
visit covers ``[start, max(end, start) + gap]`` and a store visit is one
connected run of those intervals. That makes it local: a zone visit added,
extended, moved to another customer or deleted changes only the store visit(s)
it touches, so triggers on ``visits`` keep the table right in the same
transaction as the write, whoever writes (ingest, merges, erasure, other
processes, older code):

* insert: the new interval and every stay it touches become one stay;
* an extension (``last_seen_at`` grows, the ingest's common write): the same,
  without counting a new zone visit;
* delete: the stay that held the row is recomputed from its remaining zone
  visits (it may split in two or vanish), so an erased customer leaves nothing;
* any other update (a merge moving the row to another customer, a moved start):
  delete, then insert.

Columns are Unix seconds (``unixepoch()`` of the stored text, truncated as
every analytics read is)::

    store_visits(stay_id, customer_id, started_at, ended_at, last_seen_at, zone_visits)

``ended_at`` is the stay's latest ``max(end, start)`` (what the join uses) and
``last_seen_at`` its latest raw ``last_seen_at``. The gap the table was built
with is ``meta['store_visit_gap']``; :func:`ensure` rebuilds it when asked for
another one. :func:`migrate` creates the table and triggers on an older data
dir and backfills it once, logging progress.
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from core.analytics_types import DEFAULT_GAP_SECONDS

log = logging.getLogger(__name__)

GAP_KEY = "store_visit_gap"
_GAP = f"(SELECT CAST(value AS INTEGER) FROM meta WHERE key = '{GAP_KEY}')"
# Text bound for the visits table's fixed-width UTC times: epoch x -> '...T..:..:...000000+00:00'.
_FMT = "'%Y-%m-%dT%H:%M:%S.000000+00:00'"

TABLE = """
CREATE TABLE IF NOT EXISTS store_visits (
    stay_id INTEGER PRIMARY KEY,
    customer_id TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    zone_visits INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS store_visits_customer
    ON store_visits(customer_id, started_at, ended_at, last_seen_at);
CREATE INDEX IF NOT EXISTS store_visits_started ON store_visits(started_at, customer_id, ended_at);
-- Per-customer zone-visit reads (the recomputation below, the Customers page).
CREATE INDEX IF NOT EXISTS analytics_visits_customer ON visits(customer_id, started_at, last_seen_at);
-- Range reads and the zone roll-up's recomputation of one quarter hour.
CREATE INDEX IF NOT EXISTS analytics_visits_range
    ON visits(started_at, camera_id, customer_id, zone, last_seen_at);
-- The store's UTC offset from each moment on (empty: UTC), for local days and hours.
CREATE TABLE IF NOT EXISTS store_tz (since INTEGER PRIMARY KEY, offset_s INTEGER NOT NULL);
-- Store visits per local day (how many, how many distinct customers) and per local
-- hour (hours since 1970-01-01 00:00 local): no customer ids.
CREATE TABLE IF NOT EXISTS stay_days (
    local_day INTEGER PRIMARY KEY, stays INTEGER NOT NULL, visitors INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS stay_hours (local_hour INTEGER PRIMARY KEY, stays INTEGER NOT NULL);
-- Zone visits per quarter hour (UTC, by start), camera and zone, with their dwell
-- (seconds): no customer ids. Every real time zone's midnight falls on a quarter hour.
CREATE TABLE IF NOT EXISTS zone_quarters (
    quarter INTEGER NOT NULL,
    camera_id TEXT NOT NULL,
    zone TEXT NOT NULL,
    zone_visits INTEGER NOT NULL,
    dwell_sum INTEGER NOT NULL,
    dwell_max INTEGER NOT NULL,
    PRIMARY KEY (quarter, camera_id, zone)
) WITHOUT ROWID;
-- Store visits per customer and local week (days since 1970-01-05, a Monday, / 7 + 1:
-- (local_day + 3) / 7) and local month (year * 12 + month - 1): how many and the first
-- and last start (epoch s). A customer's rows go with their last store visit.
CREATE TABLE IF NOT EXISTS customer_weeks (
    period INTEGER NOT NULL, customer_id TEXT NOT NULL,
    stays INTEGER NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL,
    PRIMARY KEY (period, customer_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS customer_months (
    period INTEGER NOT NULL, customer_id TEXT NOT NULL,
    stays INTEGER NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL,
    PRIMARY KEY (period, customer_id)
) WITHOUT ROWID;
-- Sales per local week / month, customer ('' = unattributed) and currency. A row
-- whose count reaches 0 is deleted, so an erased customer (whose sales become
-- unattributed) leaves no id here.
CREATE TABLE IF NOT EXISTS sale_weeks (
    period INTEGER NOT NULL, customer_id TEXT NOT NULL, currency TEXT NOT NULL,
    transactions INTEGER NOT NULL, spend_cents INTEGER NOT NULL,
    PRIMARY KEY (period, customer_id, currency)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sale_months (
    period INTEGER NOT NULL, customer_id TEXT NOT NULL, currency TEXT NOT NULL,
    transactions INTEGER NOT NULL, spend_cents INTEGER NOT NULL,
    PRIMARY KEY (period, customer_id, currency)
) WITHOUT ROWID;
"""

_COLUMNS = "store_visits (customer_id, started_at, ended_at, last_seen_at, zone_visits)"


def stays_select(where: str, gap: str = _GAP) -> str:
    """SQL computing store visits from the zone visits ``WHERE where`` (columns as :data:`_COLUMNS`).

    A zone visit starts a new stay when it starts more than ``gap`` after the
    running maximum of the earlier ends (window over start order); stays are
    then the groups of the running count of those breaks.
    """
    return f"""
SELECT customer_id, MIN(s), MAX(e), MAX(l), COUNT(*) FROM (
  SELECT customer_id, s, e, l,
         SUM(brk) OVER (PARTITION BY customer_id ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS grp
  FROM (
    SELECT customer_id, s, e, l,
           CASE WHEN s <= MAX(e) OVER (PARTITION BY customer_id ORDER BY s, e
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) + {gap}
                THEN 0 ELSE 1 END AS brk
    FROM (
      SELECT customer_id, unixepoch(started_at) AS s,
             MAX(unixepoch(last_seen_at), unixepoch(started_at)) AS e, unixepoch(last_seen_at) AS l
      FROM visits WHERE {where}
    )
  )
) GROUP BY customer_id, grp"""


def _merge(row: str, counted: int) -> str:
    """Trigger SQL: ``row``'s interval and every stay it touches become one stay."""
    s = f"unixepoch({row}.started_at)"
    e = f"MAX(unixepoch({row}.last_seen_at), {s})"
    c = f"{row}.customer_id"
    return f"""
INSERT INTO {_COLUMNS}
SELECT {c}, MIN(s), MAX(e), MAX(l), SUM(n) FROM (
  SELECT started_at AS s, ended_at AS e, last_seen_at AS l, zone_visits AS n FROM store_visits
  WHERE customer_id = {c}
    AND started_at >= COALESCE(
      (SELECT MAX(started_at) FROM store_visits WHERE customer_id = {c} AND started_at < {s}), {s})
    AND started_at <= {e} + {_GAP}
    AND ended_at + {_GAP} >= {s}
  UNION ALL SELECT {s}, {e}, unixepoch({row}.last_seen_at), {counted}
);
DELETE FROM store_visits
WHERE customer_id = {c} AND stay_id <> last_insert_rowid()
  AND started_at BETWEEN (SELECT started_at FROM store_visits WHERE stay_id = last_insert_rowid())
                     AND (SELECT ended_at FROM store_visits WHERE stay_id = last_insert_rowid());
"""


def _unmerge(row: str, exclude: str | None) -> str:
    """Trigger SQL: recompute the stay that held ``row`` from its remaining zone visits.

    The stay's zone visits are exactly the customer's zone visits starting
    after the previous stay's end and before the next stay's start, so the
    stay is dropped and that window recomputed.
    """
    s = f"unixepoch({row}.started_at)"
    c = f"{row}.customer_id"
    prev_end = (
        f"(SELECT ended_at FROM store_visits WHERE customer_id = {c} AND started_at <= {s} "
        "ORDER BY started_at DESC LIMIT 1)"
    )
    next_start = f"(SELECT MIN(started_at) FROM store_visits WHERE customer_id = {c} AND started_at > {s})"
    where = (
        f"customer_id = {c} "
        f"AND started_at >= strftime({_FMT}, COALESCE({prev_end} + 1, 0), 'unixepoch') "
        f"AND started_at < COALESCE(strftime({_FMT}, {next_start}, 'unixepoch'), '9')"
    )
    if exclude:
        where += f" AND visit_id <> {exclude}"
    return f"""
DELETE FROM store_visits WHERE customer_id = {c} AND started_at =
  (SELECT MAX(started_at) FROM store_visits WHERE customer_id = {c} AND started_at <= {s});
INSERT INTO {_COLUMNS} {stays_select(where)};
"""


#: meta key: an upper bound of any store visit's length (s), so reads can bound
#: a search for the store visits that started before a moment and last past it.
LONGEST_KEY = "store_visit_longest"


def local_seconds(t: str) -> str:
    """SQL: the epoch ``t`` moved by the store's UTC offset at that moment (local wall-clock seconds)."""
    return (
        f"({t} + COALESCE((SELECT offset_s FROM store_tz WHERE since <= {t} ORDER BY since DESC LIMIT 1), 0))"
    )


def _local_hour(t: str) -> str:
    """SQL: hours since 1970-01-01 00:00 in the store's time zone of the epoch ``t``."""
    return f"({local_seconds(t)} / 3600)"


def local_week(t: str) -> str:
    """SQL: the store-local week (Monday-based, see ``customer_weeks``) of the epoch ``t``."""
    return f"(({local_seconds(t)} / 86400 + 3) / 7)"


def local_month(t: str) -> str:
    """SQL: the store-local month (``year * 12 + month - 1``) of the epoch ``t``."""
    local = local_seconds(t)
    return (
        f"(CAST(strftime('%Y', {local}, 'unixepoch') AS INTEGER) * 12 "
        f"+ CAST(strftime('%m', {local}, 'unixepoch') AS INTEGER) - 1)"
    )


# Epoch bounds (a day wider than any UTC offset) of local week / month ``p``.
_WEEK_SPAN = ("({p} * 7 - 3) * 86400 - 86400", "({p} * 7 + 4) * 86400 + 86400")
_MONTH_SPAN = (
    "unixepoch(printf('%04d-%02d-01', {p} / 12, {p} % 12 + 1)) - 86400",
    "unixepoch(printf('%04d-%02d-01', {p} / 12, {p} % 12 + 1), '+1 month') + 86400",
)


def _stay_period_sql(table: str, of: Callable[[str], str], span: tuple[str, str]) -> tuple[str, str]:
    """Trigger SQL adding / removing ``NEW`` / ``OLD`` store visit in a per-customer period roll-up."""
    add = (
        f"INSERT INTO {table} VALUES ({of('NEW.started_at')}, NEW.customer_id, 1, "
        "NEW.started_at, NEW.started_at) ON CONFLICT(period, customer_id) DO UPDATE SET "
        "stays = stays + 1, first = MIN(first, excluded.first), last = MAX(last, excluded.last);"
    )
    p = f"{table}.period"
    lo, hi = (x.format(p=p) for x in span)

    def edge(order: str) -> str:
        # The customer's remaining first / last start in the period: an index walk from the end.
        return (
            f"(SELECT started_at FROM store_visits WHERE customer_id = OLD.customer_id "
            f"AND started_at BETWEEN {lo} AND {hi} AND {of('started_at')} = {p} "
            f"ORDER BY started_at {order} LIMIT 1)"
        )

    remove = (
        f"UPDATE {table} SET stays = stays - 1, first = COALESCE({edge('ASC')}, 0), "
        f"last = COALESCE({edge('DESC')}, 0) "
        f"WHERE period = {of('OLD.started_at')} AND customer_id = OLD.customer_id;\n"
        f"DELETE FROM {table} WHERE period = {of('OLD.started_at')} AND customer_id = OLD.customer_id "
        "AND stays <= 0;"
    )
    return add, remove


def _sale_period_sql(table: str, of: Callable[[str], str], row: str, sign: int) -> str:
    """Trigger SQL adding (``sign`` 1) or removing (-1) sale ``row`` in a per-period roll-up."""
    at = f"unixepoch({row}.occurred_at)"
    key = f"{of(at)}, COALESCE({row}.customer_id, ''), {row}.currency"
    if sign > 0:
        return (
            f"INSERT INTO {table} VALUES ({key}, 1, {row}.amount_cents) "
            "ON CONFLICT(period, customer_id, currency) DO UPDATE SET "
            "transactions = transactions + 1, spend_cents = spend_cents + excluded.spend_cents;"
        )
    where = "WHERE (period, customer_id, currency) = (" + key + ")"
    return (
        f"UPDATE {table} SET transactions = transactions - 1, spend_cents = spend_cents - {row}.amount_cents "
        f"{where};\nDELETE FROM {table} {where} AND transactions <= 0;"
    )


def _other_stay_that_day(row: str) -> str:
    """SQL: whether ``row``'s customer has another store visit starting the same local day."""
    day = f"({_local_hour(f'{row}.started_at')} / 24)"
    return (
        f"EXISTS (SELECT 1 FROM store_visits AS o WHERE o.customer_id = {row}.customer_id "
        f"AND o.started_at BETWEEN {row}.started_at - 93600 AND {row}.started_at + 93600 "
        f"AND o.stay_id <> {row}.stay_id AND {_local_hour('o.started_at')} / 24 = {day})"
    )


def _quarter(row: str) -> str:
    """Trigger SQL: recompute the zone roll-up row of ``row``'s quarter hour, camera and zone."""
    q = f"(unixepoch({row}.started_at) / 900)"
    return f"""
DELETE FROM zone_quarters WHERE quarter = {q} AND camera_id = {row}.camera_id AND zone = {row}.zone;
INSERT INTO zone_quarters
SELECT {q}, {row}.camera_id, {row}.zone, COUNT(*), SUM(d), MAX(d) FROM (
  SELECT MAX(0, unixepoch(last_seen_at) - unixepoch(started_at)) AS d FROM visits
  WHERE started_at >= strftime({_FMT}, {q} * 900, 'unixepoch')
    AND started_at < strftime({_FMT}, {q} * 900 + 900, 'unixepoch')
    AND camera_id = {row}.camera_id AND zone = {row}.zone
) WHERE d IS NOT NULL GROUP BY 1;
"""


_CW = _stay_period_sql("customer_weeks", local_week, _WEEK_SPAN)
_CM = _stay_period_sql("customer_months", local_month, _MONTH_SPAN)

ROLLUP_TRIGGERS = f"""
CREATE TRIGGER IF NOT EXISTS stay_rollup_add AFTER INSERT ON store_visits BEGIN
{_CW[0]}
{_CM[0]}
UPDATE meta SET value = NEW.ended_at - NEW.started_at
  WHERE key = '{LONGEST_KEY}' AND CAST(value AS INTEGER) < NEW.ended_at - NEW.started_at;
INSERT INTO stay_hours VALUES ({_local_hour("NEW.started_at")}, 1)
  ON CONFLICT(local_hour) DO UPDATE SET stays = stays + 1;
INSERT INTO stay_days VALUES ({_local_hour("NEW.started_at")} / 24, 1, NOT {_other_stay_that_day("NEW")})
  ON CONFLICT(local_day) DO UPDATE SET stays = stays + 1, visitors = visitors + excluded.visitors;
END;
CREATE TRIGGER IF NOT EXISTS stay_rollup_remove AFTER DELETE ON store_visits BEGIN
{_CW[1]}
{_CM[1]}
UPDATE stay_hours SET stays = stays - 1 WHERE local_hour = {_local_hour("OLD.started_at")};
UPDATE stay_days SET stays = stays - 1, visitors = visitors - NOT {_other_stay_that_day("OLD")}
  WHERE local_day = {_local_hour("OLD.started_at")} / 24;
END;
CREATE TRIGGER IF NOT EXISTS sale_rollup_add AFTER INSERT ON transactions BEGIN
{_sale_period_sql("sale_weeks", local_week, "NEW", 1)}
{_sale_period_sql("sale_months", local_month, "NEW", 1)}
END;
CREATE TRIGGER IF NOT EXISTS sale_rollup_remove AFTER DELETE ON transactions BEGIN
{_sale_period_sql("sale_weeks", local_week, "OLD", -1)}
{_sale_period_sql("sale_months", local_month, "OLD", -1)}
END;
CREATE TRIGGER IF NOT EXISTS sale_rollup_change
AFTER UPDATE OF occurred_at, customer_id, amount_cents, currency ON transactions BEGIN
{_sale_period_sql("sale_weeks", local_week, "OLD", -1)}
{_sale_period_sql("sale_months", local_month, "OLD", -1)}
{_sale_period_sql("sale_weeks", local_week, "NEW", 1)}
{_sale_period_sql("sale_months", local_month, "NEW", 1)}
END;
"""
#: Names of every roll-up trigger (dropped for a bulk refill, counted by :func:`migrate`).
ROLLUP_TRIGGER_NAMES = (
    "stay_rollup_add",
    "stay_rollup_remove",
    "sale_rollup_add",
    "sale_rollup_remove",
    "sale_rollup_change",
)
#: Bumped when derived tables are added: an older data dir is then rebuilt once.
ROLLUP_VERSION = "2"
VERSION_KEY = "store_visit_rollups"


# The row stays in the same stay and zone roll-up row, and its end does not move back.
_GROWS = (
    "NEW.customer_id IS OLD.customer_id AND NEW.started_at IS OLD.started_at "
    "AND NEW.camera_id IS OLD.camera_id AND NEW.zone IS OLD.zone "
    "AND unixepoch(NEW.last_seen_at) >= unixepoch(OLD.last_seen_at)"
)

TRIGGERS = f"""
CREATE TRIGGER IF NOT EXISTS store_visits_insert AFTER INSERT ON visits BEGIN
{_merge("NEW", 1)}
{_quarter("NEW")}
END;
CREATE TRIGGER IF NOT EXISTS store_visits_extend AFTER UPDATE OF last_seen_at ON visits
WHEN {_GROWS} AND unixepoch(NEW.last_seen_at) > unixepoch(OLD.last_seen_at) BEGIN
{_merge("NEW", 0)}
{_quarter("NEW")}
END;
CREATE TRIGGER IF NOT EXISTS store_visits_change
AFTER UPDATE OF customer_id, started_at, last_seen_at, camera_id, zone ON visits
WHEN NOT ({_GROWS}) BEGIN
{_unmerge("OLD", "NEW.visit_id")}
{_merge("NEW", 1)}
{_quarter("OLD")}
{_quarter("NEW")}
END;
CREATE TRIGGER IF NOT EXISTS store_visits_delete AFTER DELETE ON visits BEGIN
{_unmerge("OLD", None)}
{_quarter("OLD")}
END;
"""


TZ_KEY = "store_visit_tz"


def built(conn: sqlite3.Connection) -> tuple[int, str] | None:
    """``(gap, time zone)`` the tables were built with, or None when they have not been built."""
    rows = dict(conn.execute("SELECT key, value FROM meta WHERE key IN (?, ?)", (GAP_KEY, TZ_KEY)).fetchall())
    if GAP_KEY not in rows:
        return None
    return int(rows[GAP_KEY]), str(rows.get(TZ_KEY, "UTC"))


#: Zone names that are UTC itself (offset 0, no transitions).
UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Etc/Zulu", "Universal", "Zulu"})


@functools.lru_cache(maxsize=8)
def tz_offsets(tz: str, first_year: int = 1990, last_year: int = 2080) -> list[tuple[int, int]]:
    """``(since, offset)`` rows: the UTC offset (s) of ``tz`` from each transition on."""
    if tz in UTC_NAMES:
        # No transitions, offset 0: what the day-by-day scan below returns after
        # ~33,000 lookups (65 ms at every start-up on a fresh data dir).
        return []
    zone = ZoneInfo(tz)

    def offset(t: int) -> int:
        u = datetime.fromtimestamp(t, zone).utcoffset()
        return int(u.total_seconds()) if u is not None else 0

    t = int(datetime(first_year, 1, 1, tzinfo=UTC).timestamp())
    stop = int(datetime(last_year, 1, 1, tzinfo=UTC).timestamp())
    current = offset(t)
    rows = [(-(2**62), current)]
    while t < stop:
        nxt = t + 86400
        if offset(nxt) != current:
            lo, hi = t, nxt  # offset(lo) == current != offset(hi)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if offset(mid) == current else (lo, mid)
            current = offset(hi)
            rows.append((hi, current))
        t = nxt
    return rows if len(rows) > 1 or current else []


def _fill_rollups(conn: sqlite3.Connection) -> None:
    """Recompute the store-local roll-ups from ``store_visits`` and ``transactions`` (no triggers)."""
    for table in (
        "stay_hours",
        "stay_days",
        "customer_weeks",
        "customer_months",
        "sale_weeks",
        "sale_months",
    ):
        conn.execute(f"DELETE FROM {table}")
    for table, of in (("customer_weeks", local_week), ("customer_months", local_month)):
        conn.execute(
            f"INSERT INTO {table} SELECT p, customer_id, COUNT(*), MIN(started_at), MAX(started_at) "
            f"FROM (SELECT {of('started_at')} AS p, customer_id, started_at FROM store_visits) "
            "GROUP BY p, customer_id"
        )
    for table, of in (("sale_weeks", local_week), ("sale_months", local_month)):
        conn.execute(
            f"INSERT INTO {table} SELECT p, c, currency, COUNT(*), SUM(amount_cents) FROM ("
            f"SELECT {of('unixepoch(occurred_at)')} AS p, COALESCE(customer_id, '') AS c, currency, "
            "amount_cents FROM transactions) GROUP BY p, c, currency"
        )
    lh = _local_hour("started_at")
    conn.execute(f"INSERT INTO stay_hours SELECT {lh}, COUNT(*) FROM store_visits GROUP BY 1")
    conn.execute(
        "INSERT INTO stay_days SELECT d, COUNT(*), COUNT(DISTINCT customer_id) "
        f"FROM (SELECT {lh} / 24 AS d, customer_id FROM store_visits) GROUP BY d"
    )


def _set_tz(conn: sqlite3.Connection, tz: str) -> None:
    conn.execute("DELETE FROM store_tz")
    conn.executemany("INSERT INTO store_tz VALUES (?, ?)", tz_offsets(tz))
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (TZ_KEY, tz))


def rebuild(
    conn: sqlite3.Connection,
    gap: int,
    tz: str,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 500,
) -> int:
    """Recompute every derived table from the zone visits; the caller holds a write transaction.

    Goes ``chunk`` customers at a time, calling ``progress(done, total)``
    after each; returns the number of store visits.
    """
    for name in ROLLUP_TRIGGER_NAMES:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")  # refilled in bulk below
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (GAP_KEY, str(int(gap))))
    _set_tz(conn, tz)
    conn.execute("DELETE FROM store_visits")
    ids = [r[0] for r in conn.execute("SELECT DISTINCT customer_id FROM visits ORDER BY customer_id")]
    for i in range(0, len(ids), chunk):
        part = json.dumps(ids[i : i + chunk])
        conn.execute(
            f"INSERT INTO {_COLUMNS} "
            + stays_select("customer_id IN (SELECT value FROM json_each(?))", gap=str(int(gap))),
            (part,),
        )
        if progress is not None:
            progress(min(i + chunk, len(ids)), len(ids))
    _fill_rollups(conn)
    conn.execute(
        "INSERT OR REPLACE INTO meta SELECT ?, COALESCE(MAX(ended_at - started_at), 0) FROM store_visits",
        (LONGEST_KEY,),
    )
    conn.execute("DELETE FROM zone_quarters")
    conn.execute(
        "INSERT INTO zone_quarters SELECT q, camera_id, zone, COUNT(*), SUM(d), MAX(d) FROM ("
        "SELECT unixepoch(started_at) / 900 AS q, camera_id, zone, "
        "MAX(0, unixepoch(last_seen_at) - unixepoch(started_at)) AS d FROM visits) GROUP BY 1, 2, 3"
    )
    for statement in _statements(ROLLUP_TRIGGERS):
        conn.execute(statement)
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (VERSION_KEY, ROLLUP_VERSION))
    return int(conn.execute("SELECT COUNT(*) FROM store_visits").fetchone()[0])


def _log_progress(started: float) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        log.warning(
            "building store visits: %d / %d customers (%.0f s)", done, total, time.monotonic() - started
        )

    return report


def migrate(conn: sqlite3.Connection, gap: int = DEFAULT_GAP_SECONDS, tz: str = "UTC") -> None:
    """Create the tables and triggers; backfill them once on a data dir that predates them.

    Run with the schema lock held and outside any transaction (it opens its own
    ``BEGIN IMMEDIATE``). A no-op when already built.
    """
    have = conn.execute(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' "
        "AND (name LIKE 'store_visits_%' OR name LIKE 'stay_rollup_%' OR name LIKE 'sale_rollup_%')"
    ).fetchone()[0]
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (VERSION_KEY,)).fetchone()
    current = row is not None and row[0] == ROLLUP_VERSION
    if have == 4 + len(ROLLUP_TRIGGER_NAMES) and built(conn) is not None and current:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        # One statement at a time: executescript() would COMMIT first.
        for statement in _statements(TABLE):
            conn.execute(statement)
        if have >= 6 and built(conn) is not None:
            # Store visits kept already (an earlier roll-up version): add the new roll-ups only.
            log.warning("adding per-customer and per-sale roll-ups (once, on upgrade)")
            for name in ROLLUP_TRIGGER_NAMES:
                conn.execute(f"DROP TRIGGER IF EXISTS {name}")
            _fill_rollups(conn)
            for statement in _statements(ROLLUP_TRIGGERS):
                conn.execute(statement)
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (VERSION_KEY, ROLLUP_VERSION))
            conn.execute("COMMIT")
            return
        zone_visits = conn.execute("SELECT COUNT(*) FROM visits").fetchone()[0]
        started = time.monotonic()
        loud = zone_visits > 50_000
        if loud:
            log.warning("building store visits from %d zone visits (once, on upgrade)", zone_visits)
        stays = rebuild(conn, gap, tz, _log_progress(started) if loud else None)
        for statement in _statements(TRIGGERS):
            conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    if loud:
        log.warning("built %d store visits in %.1f s", stays, time.monotonic() - started)


def ensure(conn: sqlite3.Connection, gap: int, tz: str) -> bool:
    """Make the derived tables match ``gap`` and ``tz`` (rebuilt or re-timed when they differ).

    Returns False when the tables do not exist (a database no
    :class:`core.local.sqlite.SqliteDatabase` has opened yet).
    """
    have = built(conn)
    if have is None:
        return False
    if have == (gap, tz):
        return True
    conn.execute("BEGIN IMMEDIATE")
    try:
        have = built(conn)
        if have is not None and have[0] != gap:
            log.warning("rebuilding store visits for a visit gap of %d s", gap)
            rebuild(conn, gap, tz)
        elif have is not None and have[1] != tz:
            log.warning("re-timing the store visit roll-ups to %s", tz)
            _set_tz(conn, tz)
            _fill_rollups(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return True


def _statements(script: str) -> list[str]:
    """Split a script into complete statements (trigger bodies hold semicolons)."""
    out: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        if not pending and (not line.strip() or line.lstrip().startswith("--")):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    return out


__all__ = [
    "GAP_KEY",
    "LONGEST_KEY",
    "TZ_KEY",
    "built",
    "ensure",
    "migrate",
    "rebuild",
    "stays_select",
    "tz_offsets",
]
