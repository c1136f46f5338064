"""Behaviour events (visits, views, carts, purchases, sign-ups): read -> events ledger -> visits.

The optional second input of a run (``--events``). The file is opened with the transaction
reader's file loading (same formats, encodings, header search and one-line errors); every row is
then kept or dropped for one named reason (:data:`REASONS`), and the kept events are cut into
visits in one DuckDB window pass: a session ID when the file has one, else a gap longer than
``events.session_gap_minutes``. Per-customer visit features join the order-based customer table;
customers seen only in events stay in it as non-buyers (no orders, monetary 0).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from segwork import read
from segwork.errors import SegworkInputError
from segwork.read import Notice
from segwork.schema import EVENT_TYPES, ColumnMap, EventOptions, ReadOptions
from segwork.store import EV_CLASSIFIED, EV_VISITS, EVENTS

#: Drop reasons in the order they are tested: the first that matches is the row's reason.
REASONS: tuple[str, ...] = (
    "missing_customer",
    "missing_timestamp",  # empty or unparseable
    "in_future",  # after the moment the run started
    "after_as_of",
    "duplicate",  # an exact copy of an earlier row (customer, time, type, session)
    "bot",  # the customer's kept events exceed events.max_events_per_day per active day
)
#: Common spellings of the event types (trimmed, lower-cased); events.event_types adds to them.
KNOWN_TYPES: dict[str, str] = {
    **{t: t for t in EVENT_TYPES},
    "session_start": "visit",
    "page_view": "view",
    "pageview": "view",
    "view_item": "view",
    "product_view": "view",
    "add_to_cart": "cart",
    "addtocart": "cart",
    "add_cart": "cart",
    "order": "purchase",
    "transaction": "purchase",
    "sign_up": "signup",
    "register": "signup",
    "방문": "visit",
    "조회": "view",
    "상품조회": "view",
    "장바구니": "cart",
    "장바구니담기": "cart",
    "구매": "purchase",
    "주문": "purchase",
    "가입": "signup",
    "회원가입": "signup",
}
_FLAGGED = "ev_flagged"
_BOTS = "ev_bots"


@dataclass(frozen=True)
class EventSource:
    """What :func:`open_events` found: format, encoding, headers and the columns used."""

    path: Path
    format: str
    encoding: str | None
    headers: tuple[str, ...]
    mapping: dict[str, str]  # customer_id / timestamp / event_type / session_id -> header
    date_format: str | None
    header_row: int = 1
    sheets: tuple[str, ...] | None = None


@dataclass
class EventsLedger:
    """Event rows in, kept, and dropped per reason; :meth:`check` proves they reconcile."""

    rows_in: int
    rows_kept: int = 0
    customers_kept: int = 0
    visits: int = 0
    bot_customers: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    kept_by_type: dict[str, int] = field(default_factory=dict)  # visit, view, ..., other

    def check(self) -> None:
        """Kept + dropped == read, exactly, and the kept rows by type add up."""
        accounted = self.rows_kept + sum(self.dropped.values())
        if accounted != self.rows_in:
            raise AssertionError(
                f"events ledger does not reconcile: {accounted} rows accounted, {self.rows_in} read"
            )
        if sum(self.kept_by_type.values()) != self.rows_kept:
            raise AssertionError("events ledger: kept rows by type do not add up to rows kept")

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form for summary.json (drops in rule order, only reasons that occurred)."""
        return {
            "rows_in": self.rows_in,
            "rows_kept": self.rows_kept,
            "customers_kept": self.customers_kept,
            "visits": self.visits,
            "bot_customers": self.bot_customers,
            "dropped": {r: self.dropped[r] for r in REASONS if self.dropped.get(r)},
            "kept_by_type": dict(self.kept_by_type),
        }


@dataclass
class EventsResult:
    """The events stage of a run: source, ledger, per-customer visit aggregates, warnings."""

    source: EventSource
    ledger: EventsLedger
    customers: pd.DataFrame  # index customer_id; visits, views, carts, carts_abandoned, dates
    warnings: tuple[Notice, ...] = ()


# --------------------------------------------------------------------------- reading


def _mapping(path: Path, headers: tuple[str, ...], opts: EventOptions) -> dict[str, str]:
    """events.* name -> header; configured headers must exist, optional ones are used if present."""
    mapping = {"customer_id": opts.customer_id, "timestamp": opts.timestamp}
    for key in ("event_type", "session_id"):
        given = getattr(opts, key)
        if given is not None:
            mapping[key] = given
        elif key in headers:
            mapping[key] = key
    for key, header in mapping.items():
        if header not in headers:
            raise SegworkInputError(
                f"{path}: events.{key} = {header!r} is not a column of the events file; headers "
                f"are {read._show_headers(headers)}{read._closest_tip([header], headers)}; "
                f"set events.{key} in the config"
            )
    return mapping


def _timestamp_expr(
    path: Path, con: duckdb.DuckDBPyConnection, rel: read._Relation, header: str, fmt: str | None
) -> tuple[str, str | None]:
    """TIMESTAMP SQL for the event time and its format label; unparseable values become NULL.

    Unlike order dates, a few bad event times do not stop the run: the ledger drops them as
    ``missing_timestamp``. A column where no value reads as a date is still an error.
    """
    duck_type = rel.types[header]
    col = read._ident(header)
    if read._kind(duck_type) == "temporal":
        if "TIME ZONE" in duck_type.upper():
            return f"timezone('UTC', {col})", f"{read.PARQUET_DATES} (in UTC)"
        return f"CAST({col} AS TIMESTAMP)", read.PARQUET_DATES if rel.typed else read.EXCEL_DATES
    value = read._text(header, duck_type)
    if fmt:
        read._check_date_format(path, con, fmt)
        formats: tuple[str, ...] | None = (fmt,)
        label: str | None = fmt
    else:
        fits, order = read._families_parsing_all(path, con, rel, header, value)
        if fits:  # every value reads: the reader's own detection, refusing two-way dates
            formats = read._detect_date_format(path, con, rel, header, value)
        else:
            formats = read.DATE_FAMILIES[order[0]][1]
        label = read._format_label(con, rel, header, formats)
    parsed = read._date_sql(value, formats)
    expr = f"CASE WHEN {read._plausible(parsed)} = 1 THEN {parsed} END"
    if not con.execute(f"SELECT 1 FROM {rel.sql} WHERE {expr} IS NOT NULL LIMIT 1").fetchall():
        bad = read._bad_values(con, rel, header, f"{col} IS NOT NULL")
        raise SegworkInputError(
            f"{path}: column {header!r} has no value that reads as a date and time, e.g. "
            f"{read._examples(bad)}; set events.date_format in the config"
        )
    return expr, label


def _create_view(
    path: Path,
    con: duckdb.DuckDBPyConnection,
    rel: read._Relation,
    mapping: dict[str, str],
    opts: EventOptions,
    view: str,
    table: str | None,
) -> str | None:
    """The typed events view (row_id, customer_id, ts, raw_type, session_id); the date label."""
    cust = read._customer_expr(mapping["customer_id"], rel.types[mapping["customer_id"]], rel.typed)
    ts, label = _timestamp_expr(path, con, rel, mapping["timestamp"], opts.date_format)

    def text(key: str) -> str:
        header = mapping.get(key)
        if header is None:
            return "NULL"
        return f"NULLIF(lower(trim({read._text(header, rel.types[header])})), '')"

    sql = (
        f"SELECT CAST({rel.row_id} AS BIGINT) AS row_id, CAST({cust} AS VARCHAR) AS customer_id, "
        f"CAST({ts} AS TIMESTAMP) AS ts, CAST({text('event_type')} AS VARCHAR) AS raw_type, "
        f"CAST({text('session_id')} AS VARCHAR) AS session_id FROM {rel.sql}"
    )
    if table is not None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {read._ident(table)} AS {sql}")
        sql = f"SELECT * FROM {read._ident(table)}"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {read._ident(view)} AS {sql}")
    return label


def open_events(
    path: str | Path, opts: EventOptions, con: duckdb.DuckDBPyConnection, view: str = EVENTS
) -> EventSource:
    """Validate the events file and create the temp view ``view`` with the typed event columns."""
    p = Path(path)
    fmt = read._check_file(p)
    ropts = ReadOptions(
        encoding=opts.encoding, date_format=None, sheet=opts.sheet, header_row=opts.header_row
    )
    # the header search looks for the configured event headers, as it does for order columns
    wanted = ColumnMap(customer_id=opts.customer_id, invoice_date=opts.timestamp)
    raw_name, table = f"__segwork_raw_{view}", f"__segwork_src_{view}"
    encoding: str | None = None
    sheets: tuple[str, ...] | None = None
    header_row = 1
    if fmt == "parquet":
        headers, rel = read._parquet_relation(p, con)
        mapping = _mapping(p, headers, opts)
        label = _create_view(p, con, rel, mapping, opts, view, table=None)
    else:
        if fmt == "csv":
            df, encoding, header_row, _ = read._read_csv(p, ropts, wanted)
        else:
            book = read._read_excel(p, ropts, wanted)
            df, header_row, sheets = book.frame, book.header_row, book.sheets
        headers = tuple(df.columns)
        mapping = _mapping(p, headers, opts)
        used = read._used_columns(df, mapping)
        if fmt == "excel":
            ids = {mapping[k] for k in ("customer_id", "session_id") if k in mapping}
            used = read._excel_types(used, ids)
        rel = read._register_frame(con, raw_name, used)
        try:
            label = _create_view(p, con, rel, mapping, opts, view, table=table)
        finally:
            read._unregister(con, raw_name)
    return EventSource(p, fmt, encoding, headers, mapping, label, header_row, sheets)


# --------------------------------------------------------------------------- ledger


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def type_case(opts: EventOptions, has_type: bool) -> str:
    """SQL mapping raw_type to visit/view/cart/purchase/signup, 'other' when unmapped.

    Without an event-type column every row is a ``visit`` event (a page hit, a log line).
    """
    if not has_type:
        return "'visit'"
    known = {**KNOWN_TYPES, **{k.strip().lower(): v for k, v in (opts.event_types or {}).items()}}
    whens = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in sorted(known.items()))
    return f"CASE raw_type {whens} ELSE 'other' END"


def _ts(value: dt.date | dt.datetime) -> str:
    return f"TIMESTAMP '{pd.Timestamp(value).isoformat(sep=' ')}'"


def classify_events(
    con: duckdb.DuckDBPyConnection,
    opts: EventOptions,
    as_of: dt.date,
    now: dt.datetime,
    has_type: bool,
    source: str = EVENTS,
) -> EventsLedger:
    """Give every event row its one reason (NULL = kept) in ``EV_CLASSIFIED``; return the ledger."""
    code = {r: i + 1 for i, r in enumerate(REASONS)}
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {_FLAGGED} AS
        SELECT row_id, customer_id, ts, session_id, raw_type, event_type,
               CASE WHEN reason IS NULL AND row_number() OVER (
                        PARTITION BY customer_id, ts, raw_type, session_id ORDER BY row_id) > 1
                    THEN {code["duplicate"]} ELSE reason END AS reason
        FROM (
            SELECT *, {type_case(opts, has_type)} AS event_type,
                   CASE WHEN customer_id IS NULL THEN {code["missing_customer"]}
                        WHEN ts IS NULL THEN {code["missing_timestamp"]}
                        WHEN ts > {_ts(now)} THEN {code["in_future"]}
                        WHEN ts >= {_ts(as_of)} THEN {code["after_as_of"]}
                   END AS reason
            FROM {source}
        )
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {_BOTS} AS
        SELECT customer_id FROM {_FLAGGED} WHERE reason IS NULL GROUP BY customer_id
        HAVING count(*) > {float(opts.max_events_per_day)} * count(DISTINCT CAST(ts AS DATE))
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW {EV_CLASSIFIED} AS
        SELECT f.row_id, f.customer_id, f.ts, f.session_id, f.raw_type, f.event_type,
               CASE WHEN f.reason IS NULL AND b.customer_id IS NOT NULL THEN {code["bot"]}
                    ELSE f.reason END AS reason
        FROM {_FLAGGED} f LEFT JOIN {_BOTS} b USING (customer_id)
        """
    )
    rows = con.execute(
        f"SELECT reason, event_type, count(*), count(DISTINCT customer_id) FILTER "
        f"(WHERE reason IS NULL) FROM {EV_CLASSIFIED} GROUP BY ALL"
    ).fetchall()
    ledger = EventsLedger(rows_in=sum(int(r[2]) for r in rows))
    for reason, etype, n, _ in rows:
        if reason is None:
            ledger.rows_kept += int(n)
            ledger.kept_by_type[etype] = ledger.kept_by_type.get(etype, 0) + int(n)
        else:
            name = REASONS[int(reason) - 1]
            ledger.dropped[name] = ledger.dropped.get(name, 0) + int(n)
    ledger.kept_by_type = {t: ledger.kept_by_type[t] for t in sorted(ledger.kept_by_type)}
    ledger.customers_kept = int(
        con.execute(
            f"SELECT count(DISTINCT customer_id) FROM {EV_CLASSIFIED} WHERE reason IS NULL"
        ).fetchall()[0][0]
    )
    ledger.bot_customers = int(con.execute(f"SELECT count(*) FROM {_BOTS}").fetchall()[0][0])
    return ledger


def unmapped_types(con: duckdb.DuckDBPyConnection, limit: int = 8) -> tuple[int, list[str]]:
    """How many kept rows have an event type segwork could not map, and the commonest values."""
    rows = con.execute(
        f"SELECT coalesce(raw_type, '(empty)') AS t, count(*) AS n FROM {EV_CLASSIFIED} "
        f"WHERE reason IS NULL AND event_type = 'other' GROUP BY t ORDER BY n DESC, t "
        f"LIMIT {limit}"
    ).fetchall()
    total = con.execute(
        f"SELECT count(*) FROM {EV_CLASSIFIED} WHERE reason IS NULL AND event_type = 'other'"
    ).fetchall()[0][0]
    return int(total), [str(r[0]) for r in rows]


def latest_event(
    con: duckdb.DuckDBPyConnection, now: dt.datetime, source: str = EVENTS
) -> dt.date | None:
    """Date of the latest event with a customer and a time not in the future (for the as-of)."""
    ts = con.execute(
        f"SELECT max(ts) FROM {source} WHERE customer_id IS NOT NULL AND ts <= {_ts(now)}"
    ).fetchall()[0][0]
    return None if ts is None else pd.Timestamp(ts).date()


# --------------------------------------------------------------------------- visits


def sessionise(con: duckdb.DuckDBPyConnection, gap_minutes: int, has_session: bool) -> int:
    """Number the kept events of each customer into visits (``EV_VISITS``); the visit count.

    One window pass over the kept rows, ordered by time: a row starts a new visit when it is
    the customer's first, when its session ID differs from the previous row's (files with
    one), or when it comes more than ``gap_minutes`` after the previous row (files without).
    """
    if has_session:
        starts = "prev_ts IS NULL OR session_id IS DISTINCT FROM prev_session"
    else:
        starts = f"prev_ts IS NULL OR ts - prev_ts > INTERVAL {int(gap_minutes)} MINUTE"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {EV_VISITS} AS
        SELECT customer_id, ts, event_type,
               sum(CASE WHEN {starts} THEN 1 ELSE 0 END) OVER (
                   PARTITION BY customer_id ORDER BY ts, row_id
                   ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS visit_no
        FROM (
            SELECT customer_id, ts, event_type, row_id, session_id,
                   lag(ts) OVER w AS prev_ts, lag(session_id) OVER w AS prev_session
            FROM {EV_CLASSIFIED} WHERE reason IS NULL
            WINDOW w AS (PARTITION BY customer_id ORDER BY ts, row_id)
        )
        """
    )
    return int(
        con.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT customer_id, visit_no FROM {EV_VISITS})"
        ).fetchall()[0][0]
    )


def visit_aggregate(
    con: duckdb.DuckDBPyConnection, cart_window_days: int, as_of: dt.date, orders: str | None
) -> pd.DataFrame:
    """Per customer: visits, views, carts, carts abandoned, first/last visit, sign-up time.

    A visit with a cart is abandoned when no order (a kept order line in ``orders``, or a
    purchase event) follows the cart's last add within ``cart_window_days``; carts too recent
    for the window to have passed before ``as_of`` are open, counted in neither.
    """
    order_sql = f"SELECT DISTINCT customer_id, ts AS order_ts FROM {EV_VISITS} WHERE event_type = 'purchase'"
    if orders is not None:
        order_sql += (
            f" UNION SELECT DISTINCT customer_id, invoice_date AS order_ts FROM {orders}"
            " WHERE customer_id IS NOT NULL"
        )
    window = f"INTERVAL {int(cart_window_days)} DAY"
    df = con.execute(
        f"""
        WITH v AS (
            SELECT customer_id, visit_no, min(ts) AS start, max(ts) AS stop,
                   count(*) FILTER (WHERE event_type = 'view') AS views,
                   max(ts) FILTER (WHERE event_type = 'cart') AS cart_ts,
                   min(ts) FILTER (WHERE event_type = 'signup') AS signup
            FROM {EV_VISITS} GROUP BY customer_id, visit_no
        ), o AS ({order_sql}),
        c AS (
            SELECT k.customer_id, k.cart_ts, o.order_ts AS next_order
            FROM (SELECT customer_id, cart_ts FROM v WHERE cart_ts IS NOT NULL) k
            ASOF LEFT JOIN o ON k.customer_id = o.customer_id AND o.order_ts >= k.cart_ts
        ),
        ca AS (
            SELECT customer_id,
                   count(*) FILTER (WHERE cart_ts + {window} <= {_ts(as_of)}
                                     OR next_order <= cart_ts + {window}) AS carts_decided,
                   count(*) FILTER (WHERE cart_ts + {window} <= {_ts(as_of)}
                                     AND (next_order IS NULL OR next_order > cart_ts + {window}))
                       AS carts_abandoned
            FROM c GROUP BY customer_id
        )
        SELECT v.customer_id, count(*) AS visits, sum(v.views)::BIGINT AS views,
               count(v.cart_ts) AS carts,
               coalesce(any_value(ca.carts_abandoned), 0)::BIGINT AS carts_abandoned,
               coalesce(any_value(ca.carts_decided), 0)::BIGINT AS carts_decided,
               min(v.start) AS first_visit, max(v.stop) AS last_visit, min(v.signup) AS signup
        FROM v LEFT JOIN ca USING (customer_id)
        GROUP BY v.customer_id ORDER BY v.customer_id
        """
    ).df()
    df["customer_id"] = df["customer_id"].astype(str)
    return df.set_index("customer_id")


def prepare_events(
    con: duckdb.DuckDBPyConnection,
    path: str | Path,
    opts: EventOptions,
    as_of: dt.date,
    now: dt.datetime,
    orders: str | None = None,
    source: EventSource | None = None,
) -> EventsResult:
    """Read (unless ``source`` says the view exists), classify, sessionise and aggregate events."""
    src = source or open_events(path, opts, con)
    ledger = classify_events(con, opts, as_of, now, has_type="event_type" in src.mapping)
    ledger.visits = sessionise(con, opts.session_gap_minutes, "session_id" in src.mapping)
    ledger.check()
    customers = visit_aggregate(con, opts.cart_window_days, as_of, orders)
    notes: list[Notice] = []
    n_other, values = unmapped_types(con)
    if n_other:
        shown = ", ".join(repr(v) for v in values)
        notes.append(
            (
                "unmapped_event_types",
                f"{src.path}: {n_other:,} kept events have a type segwork does not know "
                f"({shown}); they count towards visits only; map them under events.event_types",
                {"n": n_other, "values": values},
            )
        )
    if ledger.bot_customers:
        notes.append(
            (
                "event_bots",
                f"{src.path}: {ledger.bot_customers:,} customers logged more than "
                f"{opts.max_events_per_day:g} events per active day; their "
                f"{ledger.dropped.get('bot', 0):,} events are dropped as bots",
                {
                    "customers": ledger.bot_customers,
                    "rows": ledger.dropped.get("bot", 0),
                    "rate": opts.max_events_per_day,
                },
            )
        )
    return EventsResult(src, ledger, customers, tuple(notes))
