"""Prometheus metrics (docs/deployment.md, "Metrics"): what is counted, in one place.

Every metric is ``presenced_*`` in prometheus-client's default registry, next to the process
metrics it gives by default. Counters and histograms are recorded where things happen; the
gauges of backlogs are set when ``/metrics`` is scraped (``presenced.services.observe``).

Each process counts its own: a scrape shows the process it reaches. Separate processes (``serve``
and ``worker``, or several ``serve``) are scraped one by one, each at its own address, and summed
in queries (docs/deployment.md, "Metrics"). The processes of one ``serve --processes N`` share
one address, so they use prometheus-client's multiprocess mode instead (``serve`` sets
PROMETHEUS_MULTIPROC_DIR before this module is imported): each process keeps its values in a
file of that directory, and a scrape, whichever process answers it, adds up every process's.
Each gauge says how: the backlogs measured in the database are the most recent measure, the live
streams and the pool are summed over the live processes, the process metrics are per process
(``pid``).

Recording a request is on the read hot path: ``HttpMetrics.child`` binds the labels of a
(route, method, status) once and keeps the bound children, so a request costs two dictionary
lookups, an increment and an observation.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
    values,
)

#: Whether the values are kept in files shared by the processes of ``serve --processes N`` (prometheus-client
#: chose so on import, from PROMETHEUS_MULTIPROC_DIR).
MULTIPROCESS: bool = bool(getattr(values.ValueClass, "_multiprocess", False))

#: The route label of a request no route matched (404s of unknown paths): raw paths are never labels.
UNMATCHED = "unmatched"

#: Seconds: from a fraction of a millisecond (a cached read) to a slow page.
_HTTP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Seconds from a change to its receiver's answer: retries stretch it to hours (4 at most).
_DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)
#: Seconds a receiver takes to answer one request (3 s is the limit).
_WEBHOOK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)

HTTP_REQUESTS = Counter(
    "presenced_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ("route", "method", "status"),
)
HTTP_DURATION = Histogram(
    "presenced_http_request_duration_seconds",
    "Time from a request's arrival at the application to the end of its answer, by route template and method.",
    ("route", "method"),
    buckets=_HTTP_BUCKETS,
)
TOKEN_REQUESTS = Counter(
    "presenced_token_requests",
    "Token endpoint requests by grant type and outcome (issued, or the OAuth error code).",
    ("grant_type", "outcome"),
)
PRESENCE_WRITES = Counter(
    "presenced_presence_writes",
    "Presence write actions by action and outcome (ok, refused: a client error, failed: a server error).",
    ("action", "outcome"),
)
DELIVERIES = Counter(
    "presenced_webhook_deliveries",
    "Notification delivery attempts by outcome (delivered, retry: failed and retried later, failed: given up).",
    ("outcome",),
)
DELIVERY_LATENCY = Histogram(
    "presenced_webhook_delivery_latency_seconds",
    "Time from a change to its receiver's successful answer (retries included).",
    buckets=_DELIVERY_BUCKETS,
)
WEBHOOK_REQUEST_DURATION = Histogram(
    "presenced_webhook_request_duration_seconds",
    "Time a notification receiver took to answer one request (answered or not).",
    buckets=_WEBHOOK_BUCKETS,
)
OUTBOX_PENDING = Gauge(
    "presenced_outbox_pending_notifications",
    "Notifications waiting in the outbox to be delivered (due now or retried later); measured at scrape time.",
    multiprocess_mode="mostrecent",
)
OUTBOX_OLDEST = Gauge(
    "presenced_outbox_oldest_pending_age_seconds",
    "Age of the oldest notification waiting in the outbox (0 when none waits); measured at scrape time.",
    multiprocess_mode="mostrecent",
)
CHANGE_LOG_UNREAD = Gauge(
    "presenced_change_log_unread_changes",
    "Change log entries this process's live stream feed has not read yet (0 when no stream listens); "
    "measured at scrape time.",
    multiprocess_mode="livemax",
)
LIVE_STREAMS = Gauge(
    "presenced_live_streams",
    "Open live presence streams (/_stream/presences) of this process (of all, with serve --processes).",
    multiprocess_mode="livesum",
)
SWEEPER_LAG = Gauge(
    "presenced_sweeper_lag_seconds",
    "How late the oldest due presence transition (fade, expiry) is: 0 when the sweeper is keeping up; "
    "measured at scrape time.",
    multiprocess_mode="mostrecent",
)
DB_POOL = Gauge(
    "presenced_db_pool_connections",
    "Connections of the SQLAlchemy pool of this process, by state (checked_out, idle); measured at scrape time.",
    ("state",),
    multiprocess_mode="livesum",
)

#: Every process's own process metrics, under prometheus-client's names with a ``pid`` label: its default
#: collector of them reports only the process it runs in, which is not the one answering a scrape.
_PROCESS = ProcessCollector(registry=None)
_PROCESS_GAUGES = (
    {
        # Not in the default registry (its process collector has these names): the shared files show them.
        family: Gauge(
            name, f"Of each process (pid) of serve --processes: {help_}", multiprocess_mode="liveall", registry=None
        )
        for family, name, help_ in (
            ("process_cpu_seconds", "process_cpu_seconds_total", "user and system CPU time spent in seconds."),
            ("process_resident_memory_bytes", "process_resident_memory_bytes", "resident memory size in bytes."),
            ("process_open_fds", "process_open_fds", "number of open file descriptors."),
            ("process_start_time_seconds", "process_start_time_seconds", "start time since the epoch in seconds."),
        )
    }
    if MULTIPROCESS
    else {}
)


class HttpMetrics:
    """The request counter and histogram, with children bound per (route, method, status) and kept."""

    __slots__ = ("_counts", "_durations")

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], Counter] = {}
        self._durations: dict[tuple[str, str], Histogram] = {}

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        """One answered request: ``route`` is a template (or ``UNMATCHED``), never a raw path."""
        count = self._counts.get((route, method, status))
        if count is None:
            count = self._counts[(route, method, status)] = HTTP_REQUESTS.labels(route, method, str(status))
        count.inc()
        duration = self._durations.get((route, method))
        if duration is None:
            duration = self._durations[(route, method)] = HTTP_DURATION.labels(route, method)
        duration.observe(seconds)

    def bound(self, route: str, method: str, status: int) -> tuple[Counter, Histogram]:
        """The children of one (route, method, status), bound now: for a caller that records the same ones
        again and again (the fast path)."""
        count = self._counts.setdefault((route, method, status), HTTP_REQUESTS.labels(route, method, str(status)))
        duration = self._durations.setdefault((route, method), HTTP_DURATION.labels(route, method))
        return count, duration


def measure_process() -> None:
    """Record this process's own process metrics for the others' scrapes (multiprocess mode only)."""
    for family in _PROCESS.collect() if _PROCESS_GAUGES else ():
        gauge = _PROCESS_GAUGES.get(family.name)
        if gauge is not None and family.samples:
            gauge.set(family.samples[0].value)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus's text format, and its content type: the default registry, or in multiprocess
    mode every process's values added up."""
    if not MULTIPROCESS:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


def forget_process(pid: int) -> None:
    """A process of ``serve --processes N`` ended: its live gauges go (its counts stay in the totals)."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
