"""Settings, read once, typed, and loud when wrong.

Each setting comes from a CLI flag, else an environment variable, else the
embedded default. Nothing else reads the environment.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from presenced.errors import ConfigurationError

#: Graph's documented limit for presence (10,000 requests per 30 seconds per app per tenant), and the
#: figure it documented before (1,500).
THROTTLE_GRAPH = (10_000, 30)
THROTTLE_GRAPH_1500 = (1_500, 30)
_RATE = re.compile(r"(\d{1,9})/(\d{1,5})")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "presenced"


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    #: None means SQLite in the data directory.
    database_url: str | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    #: The URL clients reach this server at; the token issuer is derived from it.
    public_url: str | None = None
    #: How many verified tokens to keep in memory.
    token_cache_size: int = 10_000
    #: "system" (real time) or "manual" (the emulator's clock, moved through /_emulator/clock).
    clock: str = "system"
    #: Make the database an emulator's (fault rules, scenarios); ``clock == "manual"`` implies it.
    emulator: bool = False
    #: HTTPS: "local" (a certificate from a CA made in the data directory), "files" (``tls_cert``
    #: and ``tls_key``), or "off" (plain HTTP, e.g. behind a TLS-terminating proxy).
    tls: str = "local"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: Trust X-Forwarded-* headers from these addresses (comma-separated; behind a proxy).
    forwarded_allow_ips: str | None = None
    #: Seconds a device-code client waits between polls.
    device_code_interval: int = 5
    #: Redis for waking other processes at once (fan-out); None: one process, or polling only.
    redis_url: str | None = None
    #: Webhooks may be plain http and reach loopback addresses (the demo and tests).
    allow_loopback_webhooks: bool = False
    #: Private networks webhooks may reach anyway (comma-separated CIDRs).
    webhook_allow_list: str = ""
    #: The longest a presence subscription may live, in minutes (Graph: 60).
    subscription_max_minutes: int = 60
    #: How long before a subscription expires reauthorizationRequired is sent, in minutes.
    reauthorization_lead_minutes: int = 10
    #: Request limits (docs/configuration.md, "Request limits"): open connections per process, seconds
    #: to send the headers and then the body, bytes of one header line and of the whole request head
    #: (request line and headers), and the number of headers.
    max_connections: int = 16_384
    header_timeout: int = 10
    body_timeout: int = 30
    max_header_bytes: int = 16_384
    max_head_bytes: int = 65_536
    max_headers: int = 100
    #: Graph's throttling (docs/graph-api.md, "Throttling"): graph, graph-1500, off, or REQUESTS/SECONDS.
    throttle: str = "graph"
    #: Days the presence history (the change log) is kept (docs/graph-api.md, "Presence history and last seen").
    history_retention_days: int = 30
    #: The log's format: "json" (a line of JSON per event) or "text"; None: json unless stderr is a terminal.
    log_format: str | None = None
    #: The lowest level presenced logs: "debug", "info" (a line per request), "warning" or "error".
    log_level: str = "info"
    #: Seconds a SIGTERM gives requests in flight and webhook deliveries before the process exits.
    shutdown_timeout: int = 10
    #: Server processes on one port (``serve --processes``); the worker runs in the first.
    processes: int = 1
    #: Prometheus metrics at ``/metrics`` (docs/deployment.md, "Metrics"): on the main port, on
    #: ``metrics_port`` instead when set, or nowhere when ``metrics`` is False.
    metrics: bool = True
    metrics_port: int | None = None
    #: The secret that seals the signing keys in the database (docs/deployment.md, "Signing keys"); None:
    #: the keys are kept in ``<data dir>/keys``. Never printed.
    keys_secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from ``PRESENCED_*`` variables, with non-None ``overrides`` on top."""
        # A variable set to nothing (PRESENCED_DATA_DIR=) counts as unset, as an empty flag would.
        env = {k: v for k, v in os.environ.items() if k.startswith("PRESENCED_") and v.strip()}
        values: dict[str, object] = {}
        if "PRESENCED_DATA_DIR" in env:
            values["data_dir"] = Path(env["PRESENCED_DATA_DIR"])
        if "PRESENCED_DATABASE_URL" in env:
            values["database_url"] = env["PRESENCED_DATABASE_URL"]
        if "PRESENCED_HOST" in env:
            values["host"] = env["PRESENCED_HOST"]
        if "PRESENCED_PORT" in env:
            values["port"] = _port(env["PRESENCED_PORT"], "PRESENCED_PORT")
        if "PRESENCED_PUBLIC_URL" in env:
            values["public_url"] = env["PRESENCED_PUBLIC_URL"]
        if "PRESENCED_CLOCK" in env:
            values["clock"] = env["PRESENCED_CLOCK"]
        if env.get("PRESENCED_EMULATOR", "").lower() in {"1", "true", "yes"}:
            values["emulator"] = True
        if "PRESENCED_TLS_CERT" in env:
            values["tls_cert"] = Path(env["PRESENCED_TLS_CERT"])
        if "PRESENCED_TLS_KEY" in env:
            values["tls_key"] = Path(env["PRESENCED_TLS_KEY"])
        if env.get("PRESENCED_HTTP", "").lower() in {"1", "true", "yes"}:
            values["tls"] = "off"
        if "PRESENCED_REDIS_URL" in env:
            values["redis_url"] = env["PRESENCED_REDIS_URL"]
        if env.get("PRESENCED_ALLOW_LOOPBACK_WEBHOOKS", "").lower() in {"1", "true", "yes"}:
            values["allow_loopback_webhooks"] = True
        if "PRESENCED_WEBHOOK_ALLOW_LIST" in env:
            values["webhook_allow_list"] = env["PRESENCED_WEBHOOK_ALLOW_LIST"]
        if "PRESENCED_SUBSCRIPTION_MAX_MINUTES" in env:
            values["subscription_max_minutes"] = _port(
                env["PRESENCED_SUBSCRIPTION_MAX_MINUTES"], "PRESENCED_SUBSCRIPTION_MAX_MINUTES"
            )
        if "PRESENCED_REAUTHORIZATION_LEAD_MINUTES" in env:
            values["reauthorization_lead_minutes"] = _port(
                env["PRESENCED_REAUTHORIZATION_LEAD_MINUTES"], "PRESENCED_REAUTHORIZATION_LEAD_MINUTES"
            )
        for name, (low, high) in LIMITS.items():
            variable = f"PRESENCED_{name.upper()}"
            if variable in env:
                values[name] = _whole(env[variable], variable, low, high)
        if "PRESENCED_HISTORY_RETENTION_DAYS" in env:
            values["history_retention_days"] = _whole(
                env["PRESENCED_HISTORY_RETENTION_DAYS"], "PRESENCED_HISTORY_RETENTION_DAYS", 1, 3650
            )
        if "PRESENCED_SHUTDOWN_TIMEOUT" in env:
            values["shutdown_timeout"] = _whole(env["PRESENCED_SHUTDOWN_TIMEOUT"], "PRESENCED_SHUTDOWN_TIMEOUT", 1, 600)
        if env.get("PRESENCED_METRICS", "").lower() in {"0", "off", "false", "no"}:
            values["metrics"] = False
        if "PRESENCED_METRICS_PORT" in env:
            values["metrics_port"] = _port(env["PRESENCED_METRICS_PORT"], "PRESENCED_METRICS_PORT")
        if "PRESENCED_PROCESSES" in env:
            values["processes"] = parse_processes(env["PRESENCED_PROCESSES"], "PRESENCED_PROCESSES")
        if "PRESENCED_KEYS_SECRET" in env or "PRESENCED_KEYS_SECRET_FILE" in env:
            values["keys_secret"] = _keys_secret(env)
        if "PRESENCED_THROTTLE" in env:
            values["throttle"] = env["PRESENCED_THROTTLE"]
        if "PRESENCED_FORWARDED_ALLOW_IPS" in env:
            values["forwarded_allow_ips"] = env["PRESENCED_FORWARDED_ALLOW_IPS"]
        if "PRESENCED_LOG_FORMAT" in env:
            values["log_format"] = env["PRESENCED_LOG_FORMAT"].strip().lower()
        if "PRESENCED_LOG_LEVEL" in env:
            values["log_level"] = env["PRESENCED_LOG_LEVEL"].strip().lower()
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = replace(cls(), **values)  # type: ignore[arg-type]
        if settings.tls_cert is not None or settings.tls_key is not None:
            settings = replace(settings, tls="files")
        settings.validate()
        return settings

    @property
    def throttle_limit(self) -> tuple[int, int] | None:
        """(requests, seconds) per application per tenant, or None for no throttling."""
        return parse_throttle(self.throttle)

    def validate(self) -> None:
        parse_throttle(self.throttle)
        if self.keys_secret is not None and len(self.keys_secret) < KEYS_SECRET_LENGTH:
            raise ConfigurationError(
                f"PRESENCED_KEYS_SECRET must be at least {KEYS_SECRET_LENGTH} characters (make one with "
                "'presenced keys secret')"
            )
        if self.clock not in {"system", "manual"}:
            raise ConfigurationError(f"--clock (PRESENCED_CLOCK) must be 'system' or 'manual', not {self.clock!r}")
        if self.log_format not in {None, "json", "text"}:
            raise ConfigurationError(
                f"--log-format (PRESENCED_LOG_FORMAT) must be json or text, not {self.log_format!r}"
            )
        if self.log_level not in {"debug", "info", "warning", "error"}:
            raise ConfigurationError(
                f"--log-level (PRESENCED_LOG_LEVEL) must be debug, info, warning or error, not {self.log_level!r}"
            )
        if not 0 <= self.port < 65536:
            raise ConfigurationError(f"--port (PRESENCED_PORT) must be between 0 and 65535, not {self.port}")
        if self.metrics_port is not None and not 1 <= self.metrics_port < 65536:
            raise ConfigurationError(
                f"--metrics-port (PRESENCED_METRICS_PORT) must be between 1 and 65535, not {self.metrics_port}"
            )
        if self.metrics_port is not None and self.metrics_port == self.port:
            raise ConfigurationError("--metrics-port (PRESENCED_METRICS_PORT) must differ from --port")
        if self.database_url is not None:
            scheme = urlsplit(self.database_url).scheme
            if scheme not in {"sqlite", "postgresql", "postgres"}:
                raise ConfigurationError(
                    "--database-url (PRESENCED_DATABASE_URL) must be postgresql://user@host/db or "
                    f"sqlite:///path, not {redacted_url(self.database_url)!r}"
                )
        if self.redis_url is not None and urlsplit(self.redis_url).scheme not in {"redis", "rediss", "unix"}:
            raise ConfigurationError(
                f"--redis-url must start with redis://, rediss:// or unix://, not {redacted_url(self.redis_url)!r}"
            )
        if self.tls not in {"local", "files", "off"}:
            raise ConfigurationError(f"TLS must be 'local', 'files' or 'off' (--http, --tls-cert), not {self.tls!r}")
        if self.tls == "files" and (self.tls_cert is None or self.tls_key is None):
            raise ConfigurationError("--tls-cert and --tls-key go together: give both")
        if not 1 <= self.reauthorization_lead_minutes < self.subscription_max_minutes:
            raise ConfigurationError(
                "PRESENCED_REAUTHORIZATION_LEAD_MINUTES must be at least 1 and under PRESENCED_SUBSCRIPTION_MAX_MINUTES"
            )
        if not 45 <= self.subscription_max_minutes <= 60 * 24 * 7:
            raise ConfigurationError(
                "PRESENCED_SUBSCRIPTION_MAX_MINUTES must be between 45 (minutes) and 10080 (7 days)"
            )
        for network in filter(None, (n.strip() for n in self.webhook_allow_list.split(","))):
            try:
                ipaddress.ip_network(network)
            except ValueError:
                raise ConfigurationError(
                    f"PRESENCED_WEBHOOK_ALLOW_LIST: {network!r} is not a network (e.g. 10.1.0.0/16)"
                ) from None
        if not 1 <= self.device_code_interval <= 60:
            raise ConfigurationError("--device-code-interval must be between 1 and 60 seconds")
        if self.public_url is not None and urlsplit(self.public_url).scheme not in {"http", "https"}:
            raise ConfigurationError(
                f"--public-url (PRESENCED_PUBLIC_URL) must be http:// or https://, not {self.public_url!r}"
            )

    @property
    def base_url(self) -> str:
        """The public URL without a trailing slash."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "http" if self.tls == "off" else "https"
        return f"{scheme}://{host}:{self.port}"


#: The request limits' settings, with the values each may take.
LIMITS = {
    "max_connections": (16, 1_000_000),
    "header_timeout": (1, 3600),
    "body_timeout": (1, 3600),
    "max_header_bytes": (1024, 1 << 20),
    "max_head_bytes": (4096, 1 << 24),
    "max_headers": (16, 10_000),
}


#: Open files a process keeps beyond its connections: the database, logs, listening sockets, and the
#: connections refused while they drain (``connection_limit``).
SPARE_FILES = 256


def raise_file_limit() -> int:
    """Raise this process's soft limit of open files (``ulimit -n``; each connection is one) to its hard limit,
    as far as the system lets it; the soft limit now (docs/configuration.md, "Request limits")."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):  # the system allows less: what it allows stands
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if soft != resource.RLIM_INFINITY else 1 << 30


def connection_limit(settings: Settings, open_files: int) -> int:
    """The connections a process may hold: ``max_connections``, or fewer when the limit of open files leaves less
    room, so that a connection over the limit is still accepted and answered 503."""
    return min(settings.max_connections, max(open_files - SPARE_FILES, 16))


#: The least length of the secret that seals the signing keys (``presenced keys secret`` makes one of 43).
KEYS_SECRET_LENGTH = 32


def _keys_secret(env: dict[str, str]) -> str:
    """PRESENCED_KEYS_SECRET, or the first line of the file PRESENCED_KEYS_SECRET_FILE names."""
    if "PRESENCED_KEYS_SECRET" in env and "PRESENCED_KEYS_SECRET_FILE" in env:
        raise ConfigurationError("set PRESENCED_KEYS_SECRET or PRESENCED_KEYS_SECRET_FILE, not both")
    if "PRESENCED_KEYS_SECRET" in env:
        return env["PRESENCED_KEYS_SECRET"].strip()
    path = Path(env["PRESENCED_KEYS_SECRET_FILE"])
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not text"
        raise ConfigurationError(f"PRESENCED_KEYS_SECRET_FILE: cannot read {path}: {reason}") from None
    return lines[0].strip() if lines else ""


def _whole(raw: str, name: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be a whole number from {low} to {high}, not {raw!r}")
    return value


def _port(raw: str, name: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a port number, not {raw!r}") from None


#: Where ``serve`` records the URL it listens at, so ``presenced token`` can use the same issuer.
SERVE_RECORD = "serve.json"


def record_serving_url(settings: Settings) -> None:
    (settings.data_dir / SERVE_RECORD).write_text(json.dumps({"baseUrl": settings.base_url}))


def recorded_url(data_dir: Path) -> str | None:
    """The URL the last ``serve`` on this data directory listened at, if any."""
    try:
        value = json.loads((data_dir / SERVE_RECORD).read_text()).get("baseUrl")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def redacted_url(url: str) -> str:
    """``url`` without its secrets: a password in the user part, or in a ``password`` query parameter,
    becomes ``PASSWORD`` (for messages and the start-up lines, which end up in logs)."""
    parts = urlsplit(url)
    if not parts.password and "password" not in parts.query.lower():
        return url
    netloc = parts.netloc
    if parts.password:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:PASSWORD@{host}"
    query = "&".join(
        f"{key}=PASSWORD" if "password" in key.lower() else f"{key}={value}" if sep else key
        for key, sep, value in (item.partition("=") for item in parts.query.split("&") if item)
    )
    return parts._replace(netloc=netloc, query=query).geturl()


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data directory and prove it can be written."""
    try:
        created = not data_dir.exists()
        data_dir.mkdir(parents=True, exist_ok=True)
        if created:
            # Keys, the database and certificates never belong in a repository the directory is in.
            (data_dir / ".gitignore").write_text("# presenced's data: signing keys, database, certificates\n*\n")
        # One probe per process: processes starting together must not delete each other's.
        probe = data_dir / f".write-test-{os.getpid()}-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigurationError(f"cannot write the data directory {data_dir}: {exc.strerror}") from None


def parse_processes(value: str, name: str = "--processes") -> int:
    """A number of server processes: 1 to 64, or ``auto`` (one per core)."""
    if value.strip().lower() == "auto":
        return max(os.cpu_count() or 1, 1)
    return _whole(value, name, 1, 64)


def parse_throttle(value: str) -> tuple[int, int] | None:
    """``graph``, ``graph-1500``, ``off`` (None) or ``REQUESTS/SECONDS``; anything else is a configuration error."""
    text = value.strip().lower()
    if text == "off":
        return None
    if text == "graph":
        return THROTTLE_GRAPH
    if text == "graph-1500":
        return THROTTLE_GRAPH_1500
    match = _RATE.fullmatch(text)
    if match is None or int(match.group(1)) < 1 or not 1 <= int(match.group(2)) <= 3600:
        raise ConfigurationError(
            "--throttle (PRESENCED_THROTTLE) must be graph, graph-1500, off or REQUESTS/SECONDS "
            f"(1 to 3600 seconds), e.g. 100/30; not {value[:32]!r}"
        )
    return int(match.group(1)), int(match.group(2))
