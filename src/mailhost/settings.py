"""Typed settings from mailhost.toml and MAILHOST_<SECTION>_<KEY> variables; errors name the key.

Precedence, lowest first: built-in defaults, the TOML file, the environment.
Relative paths in the file are relative to the file's directory; relative paths
in the environment are relative to the working directory. Paths that are not
set default to places inside `[server] data_dir`, which itself defaults to the
directory holding the file.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import math
import re
import socket
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    ValidationError,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from mailhost.errors import ConfigError, InvalidSize
from mailhost.model.quantities import ByteSize

CONFIG_NAME = "mailhost.toml"
ENV_PREFIX = "MAILHOST_"
# Variables with the prefix that are not settings: the CLI reads them to find
# the file in the first place, so they must not be mistaken for typos.
RESERVED_VARIABLES = frozenset({"MAILHOST_CONFIG", "MAILHOST_DATA_DIR"})

# RFC 1123 §2.1 host name labels (letters, digits, inner hyphens; 63 octets each).
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_MAX_HOST_NAME = 253  # RFC 1035 §2.3.4, without the trailing dot
_SMARTHOST = re.compile(
    r"^(?:\[(?P<ip6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>[0-9]+))?$"
)

Table = dict[str, object]


@dataclass(frozen=True, slots=True)
class Smarthost:
    """A relay that receives all outbound mail instead of the recipients' MX hosts."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _refuse(kind: str, message: str, **context: object) -> PydanticCustomError:
    # The offending value is shown as a literal so that "" and " " stay visible.
    shown = {name: repr(value) if name == "got" else value for name, value in context.items()}
    return PydanticCustomError(kind, message, shown)


def host_name_problem(value: str) -> str | None:
    """Why `value` (already lower-cased) is not a host name, or None if it is one."""
    name = value.removesuffix(".")
    if not name or len(name) > _MAX_HOST_NAME:
        return f"must be a host name of 1 to {_MAX_HOST_NAME} characters"
    if any(not _LABEL.match(label) for label in name.split(".")):
        return "must be a host name such as mail.example.com (letters, digits, '-' and '.')"
    return None


def _host_name(value: str) -> str:
    name = value.strip().lower()
    problem = host_name_problem(name)
    if problem is not None:
        raise _refuse("host_name", f"{problem} (got {{got}})", got=value)
    return name.removesuffix(".")


def _listen_host(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if host_name_problem(value.lower()) is not None:
        raise _refuse("listen_host", "must be an IP address or a host name (got {got})", got=value)
    return value.lower()


def _port(value: int) -> int:
    # 0 asks the kernel for a free port (tests bind ephemeral ports this way).
    if not 0 <= value <= 65535:
        raise _refuse("port", "must be between 0 and 65535 (got {got})", got=value)
    return value


def _at_least(minimum: int) -> AfterValidator:
    def check(value: int) -> int:
        if value < minimum:
            raise _refuse(
                "too_small", "must be at least {minimum} (got {got})", minimum=minimum, got=value
            )
        return value

    return AfterValidator(check)


def _seconds(value: object) -> float:
    # An int or a float in the file; a string only from the environment (see below).
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or number < 0:
        raise _refuse("seconds", "must be a number of seconds, 0 or more (got {got})", got=value)
    return float(number)


def _size(value: object) -> ByteSize:
    try:
        if isinstance(value, ByteSize):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return ByteSize(value)
        if isinstance(value, str):
            return ByteSize.parse(value)
    except InvalidSize as exc:
        raise _refuse("size", "{reason}", reason=exc.message) from None
    raise _refuse("size", 'must be a size such as "25MB" (got {got})', got=value)


def _smarthost(value: object) -> Smarthost | None:
    if value is None or isinstance(value, Smarthost):
        return value
    if not isinstance(value, str):
        raise _refuse("smarthost", 'must be a string such as "relay.example.net:25"')
    if not value.strip():
        return None
    match = _SMARTHOST.match(value.strip())
    port = int(match.group("port") or 25) if match else 0
    host = (match.group("ip6") or _host_or_ip(match.group("host"))) if match else None
    if match is None or host is None or not 1 <= port <= 65535:
        raise _refuse(
            "smarthost",
            'must be host:port such as relay.example.net:25, or "" (got {got})',
            got=value,
        )
    return Smarthost(host, port)


def _routes(value: object) -> dict[str, Smarthost]:
    """`{"example.net" = "127.0.0.1:2526"}` in the file, `example.net=127.0.0.1:2526,...` in env."""
    if isinstance(value, str):
        pairs = [item.partition("=") for item in value.split(",") if item.strip()]
        if any(not sep for _, sep, _ in pairs):
            raise _refuse(
                "routes", 'must be domain=host:port pairs separated by "," (got {got})', got=value
            )
        value = {domain: target for domain, _, target in pairs}
    if not isinstance(value, dict):
        raise _refuse("routes", 'must be a table such as {"example.net" = "relay.example.net:25"}')
    routes: dict[str, Smarthost] = {}
    for raw_domain, target in value.items():
        domain = str(raw_domain).strip().lower().removesuffix(".")
        if host_name_problem(domain) is not None:
            raise _refuse("routes", "route key must be a domain name (got {got})", got=raw_domain)
        hop = target if isinstance(target, Smarthost) else _smarthost(str(target).strip())
        if hop is None:
            raise _refuse("routes", "route for {domain} needs host:port", domain=domain)
        routes[domain] = hop
    return routes


@dataclass(frozen=True, slots=True)
class NameServer:
    """A DNS server to ask instead of the system's resolver."""

    address: str  # an IP address: a resolver is not looked up by name
    port: int

    def __str__(self) -> str:
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{address}:{self.port}"


def _nameserver(text: str) -> NameServer:
    entry = text.strip()
    try:
        return NameServer(str(ipaddress.ip_address(entry)), 53)
    except ValueError:
        pass
    match = _SMARTHOST.match(entry)
    try:
        address = ipaddress.ip_address(match.group("ip6") or match.group("host")) if match else None
        port = int(match.group("port") or 53) if match else 0
    except ValueError:
        address, port = None, 0
    if address is None or not 1 <= port <= 65535:
        raise _refuse(
            "nameservers",
            'must be IP addresses with optional ports, such as "192.0.2.53" or '
            '"[2001:db8::53]:5353" (got {got})',
            got=text,
        )
    return NameServer(str(address), port)


def _nameservers(value: object) -> tuple[NameServer, ...]:
    """`["192.0.2.53", "127.0.0.1:5353"]` in the file, `192.0.2.53,127.0.0.1:5353` in env."""
    if isinstance(value, str):
        value = [item for item in value.split(",") if item.strip()]
    if not isinstance(value, list | tuple):
        raise _refuse("nameservers", 'must be a list such as ["192.0.2.53"]')
    return tuple(item if isinstance(item, NameServer) else _nameserver(str(item)) for item in value)


LoginKindName = Literal["provider", "customer", "domain", "user"]
_LOGIN_KINDS: tuple[LoginKindName, ...] = ("provider", "customer", "domain", "user")


def _login_kinds(value: object) -> tuple[LoginKindName, ...]:
    """`["provider", "customer"]` in the file, `provider,customer` in the environment."""
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, list | tuple):
        raise _refuse("login_kinds", 'must be a list such as ["provider", "customer"]')
    kinds: list[LoginKindName] = []
    for item in value:
        kind = next((k for k in _LOGIN_KINDS if k == item), None)
        if kind is None:
            raise _refuse(
                "login_kinds",
                "must name logins among provider, customer, domain and user (got {got})",
                got=item,
            )
        if kind not in kinds:
            kinds.append(kind)
    return tuple(kinds)


def _host_or_ip(value: str) -> str | None:
    lowered = value.lower()
    return lowered if host_name_problem(lowered) is None else None


def _public_url(value: str) -> str:
    """The panel's address as people reach it: the base of every link mailhost mails or shows."""
    text = value.strip()
    try:
        parts = urllib.parse.urlsplit(text)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is out of range or not a number
        valid = False
    # A query or fragment would swallow the path mailhost appends (…/reset/<token>).
    if not valid or "?" in text or "#" in text or "@" in parts.netloc:
        raise _refuse(
            "public_url",
            "must be an http:// or https:// URL without user, query or fragment, "
            "such as https://mail.example.com (got {got})",
            got=value,
        )
    return text.rstrip("/")


def default_public_url(hostname: str, port: int) -> str:
    """`[web] public_url` when it is not set: the server's host name and the panel's port."""
    if port == 443:
        return f"https://{hostname}"
    # Port 0 is picked by the kernel when binding (tests): nothing to say in advance.
    if port in (80, 0):
        return f"http://{hostname}"
    return f"http://{hostname}:{port}"


def _database_url(value: str) -> str:
    if "://" not in value:
        raise _refuse(
            "database_url",
            "must be a SQLAlchemy URL such as sqlite+aiosqlite:///path/mailhost.db (got {got})",
            got=value,
        )
    return value


HostName = Annotated[str, Strict(), AfterValidator(_host_name)]
ListenHost = Annotated[str, Strict(), AfterValidator(_listen_host)]
Port = Annotated[int, Strict(), AfterValidator(_port)]
Flag = Annotated[bool, Strict()]
Positive = Annotated[int, Strict(), _at_least(1)]
NonNegative = Annotated[int, Strict(), _at_least(0)]
Size = Annotated[ByteSize, PlainValidator(_size)]
Seconds = Annotated[float, PlainValidator(_seconds)]
OptionalSmarthost = Annotated[Smarthost | None, PlainValidator(_smarthost)]
StaticRoutes = Annotated[dict[str, Smarthost], PlainValidator(_routes)]
NameServers = Annotated[tuple[NameServer, ...], PlainValidator(_nameservers)]
LoginKinds = Annotated[tuple[LoginKindName, ...], PlainValidator(_login_kinds)]
DatabaseUrl = Annotated[str, Strict(), AfterValidator(_database_url)]
PublicUrl = Annotated[str, Strict(), AfterValidator(_public_url)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    """Who this server is (SMTP greeting, EHLO, certificates) and where it keeps its files."""

    hostname: HostName
    data_dir: Path
    # On SIGTERM: how long SMTP sessions in the middle of a command (a message in DATA)
    # may take to finish before they are cut off; idle sessions are ended at once.
    stop_grace_seconds: Positive = 30


class DatabaseSettings(_Section):
    """sqlite+aiosqlite:///path or postgresql+asyncpg://user:pass@host/db."""

    url: DatabaseUrl


class Listener(_Section):
    """One listening socket; the subclasses give each service its default port."""

    host: ListenHost = "127.0.0.1"
    port: Port
    enabled: Flag = True


class SmtpListener(Listener):
    """An SMTP listener's session limits, as Postfix's (anvil, smtpd_*_error_limit)."""

    max_connections: Positive = 1000
    max_connections_per_client: Positive = 50
    # Every 4xx/5xx reply of a session counts: from the soft limit on every reply
    # waits error_sleep_seconds; at the hard limit the session ends with 421 4.7.0.
    soft_error_limit: Positive = 10
    hard_error_limit: Positive = 20
    error_sleep_seconds: Seconds = 1.0


class MxSettings(SmtpListener):
    """Inbound mail from the Internet (port 25 in production)."""

    port: Port = 2525
    max_message_size: Size = ByteSize.parse("25MB")


class SubmissionSettings(SmtpListener):
    """Mail from users' programs with STARTTLS and AUTH (port 587 in production)."""

    port: Port = 2587


class SubmissionsSettings(SmtpListener):
    """Mail from users' programs over implicit TLS (port 465 in production)."""

    port: Port = 2465


class Pop3Settings(Listener):
    """POP3 with STLS (port 110 in production); the last two keys apply to [pop3s] too."""

    port: Port = 2110
    allow_plaintext_auth: Flag = False
    idle_timeout: Positive = 600  # RFC 1939 §3: an autologout timer of at least 10 minutes


class Pop3sSettings(Listener):
    """POP3 over implicit TLS (port 995 in production)."""

    port: Port = 2995


class WebSettings(Listener):
    """The control panel and the API."""

    port: Port = 8080
    # Checked before anything else, authentication included (web/body_limit.py).
    max_body_size: Size = ByteSize.parse("1MB")
    # The only base of links mailhost mails or shows; never taken from a request's
    # Host header. Default: http://<[server] hostname>:<port> (see default_public_url).
    public_url: PublicUrl


class TlsSettings(_Section):
    """Where server certificates and the local certificate authority live."""

    certs_dir: Path
    ca_dir: Path


class SyncMethod(enum.StrEnum):
    """How Maildir deliveries are made durable (storage/maildir_agent.py)."""

    FILESYSTEM = "filesystem"
    FILE = "file"


class MailSettings(_Section):
    """Where mailboxes (Maildir) live, and how deliveries are made durable."""

    maildir_root: Path
    # "filesystem": one syncfs(2) per batch of deliveries (Linux); "file": fsync each
    # file and directory, for a Maildir root that shares its file system with a busy
    # database (storage/maildir_agent.py).
    sync: SyncMethod = SyncMethod.FILESYSTEM


class DeliverySettings(_Section):
    """Outbound delivery: smarthost ("" = deliver to MX hosts), retries, expiry, DKIM."""

    smarthost: OptionalSmarthost = None
    # AUTH at the smarthost (empty: none); only ever sent after STARTTLS succeeded.
    smarthost_username: str = ""
    smarthost_password: str = ""
    # Per-domain next hops that win over the smarthost and MX: {"example.net" = "10.0.0.5:25"}.
    routes: StaticRoutes = Field(default_factory=dict)
    queue_lifetime_hours: Positive = 120
    retry_base_seconds: Positive = 60
    dkim: Flag = True
    # Addresses elsewhere that one domain's aliases may send to, in all: forwarding is
    # the domain's own routing, not an SMTP account's, and must not become an open relay.
    max_external_forwards_per_domain: Positive = 50
    # The key of the SRS addresses forwarded mail goes out with (model/srs.py): made by
    # `init` (or the first start) if missing; every node needs the same file.
    srs_secret_file: Path
    # Bounces to an SRS address are taken this many days after the forwarding (1-1000).
    srs_max_age_days: Positive = 21


class DnsSettings(_Section):
    """DNS lookups: domain ownership proofs, the DNS page's check, outbound MX routing."""

    # Empty: the system's resolver (/etc/resolv.conf). Else these servers, each
    # "IP" or "IP:port" ("[IPv6]:port"), are asked instead.
    nameservers: NameServers = ()
    # How long one ownership check waits for an answer before it says so.
    timeout_seconds: Positive = 5


class AuthSettings(_Section):
    """Login checks: the success cache and the penalty that slows failing clients."""

    cache_seconds: NonNegative = 300
    # Each recent failure from a client address doubles the wait before its next
    # answer (0, 1, 2, 4, 8 s, ...) up to this; a correct password is never refused.
    penalty_max_seconds: Seconds = 15.0
    # Failures older than this no longer count towards any penalty.
    penalty_window_seconds: Positive = 900
    # Panel logins of these kinds must use two-factor (TOTP): one that has not set it
    # up is shown the set-up page at its next login, before anything else.
    require_two_factor: LoginKinds = ()


class LogFormat(enum.StrEnum):
    """How log lines are written (logs.py)."""

    TEXT = "text"
    JSON = "json"


class LogLevel(enum.StrEnum):
    """The least severe of mailhost's log lines that is written."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class LogSettings(_Section):
    """The log on stderr: one line per event, as text (name key=value) or as JSON objects."""

    format: LogFormat = LogFormat.TEXT
    level: LogLevel = LogLevel.INFO


class Settings(BaseModel):
    """Everything configurable, one attribute per TOML section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    server: ServerSettings
    database: DatabaseSettings
    mx: MxSettings
    submission: SubmissionSettings
    submissions: SubmissionsSettings
    pop3: Pop3Settings
    pop3s: Pop3sSettings
    web: WebSettings
    tls: TlsSettings
    mail: MailSettings
    delivery: DeliverySettings
    auth: AuthSettings
    dns: DnsSettings
    log: LogSettings


def _sections() -> dict[str, type[_Section]]:
    sections: dict[str, type[_Section]] = {}
    for name, field in Settings.model_fields.items():
        model = field.annotation
        assert isinstance(model, type) and issubclass(model, _Section)
        sections[name] = model
    return sections


_SECTIONS = _sections()

# Keys that existed once: naming them says what to do instead of "unknown key".
_REMOVED: dict[tuple[str, str], str] = {
    ("auth", key): "mailhost now delays failing clients ([auth] penalty_max_seconds) "
    "instead of locking accounts"
    for key in ("max_failures_per_address", "max_failures_per_account", "failure_window_seconds")
}

# Defaults that depend on the data directory; `mailhost init` shows them commented out.
_DERIVED: dict[tuple[str, str], Callable[[Path], object]] = {
    ("server", "data_dir"): lambda data_dir: data_dir,
    ("database", "url"): lambda data_dir: f"sqlite+aiosqlite:///{data_dir / 'mailhost.db'}",
    ("tls", "certs_dir"): lambda data_dir: data_dir / "certs",
    ("tls", "ca_dir"): lambda data_dir: data_dir / "ca",
    ("mail", "maildir_root"): lambda data_dir: data_dir / "mail",
    ("delivery", "srs_secret_file"): lambda data_dir: data_dir / "srs.key",
}


def load_settings(
    config_path: Path | None, data_dir: Path | None, environ: Mapping[str, str]
) -> Settings:
    """Read `config_path` (or `<data_dir>/mailhost.toml` if it exists), then apply `environ`.

    Blocking (reads a file): call it before the event loop starts or via asyncio.to_thread.
    """
    if config_path is None:
        if data_dir is None:
            raise ConfigError("no configuration: give the data directory or the config file")
        config_path = data_dir / CONFIG_NAME
        raw = _read_toml(config_path) if config_path.exists() else {}
    else:
        raw = _read_toml(config_path)
    _refuse_removed(raw, str(config_path))
    config_dir = config_path.parent.absolute()
    _anchor_paths(raw, config_dir)
    origins = _apply_environment(raw, environ)
    _fill_defaults(raw, data_dir.absolute() if data_dir is not None else config_dir)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = [_describe(error, str(config_path), origins) for error in exc.errors()]
        raise ConfigError("\n".join(problems)) from None


def _read_toml(path: Path) -> Table:
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _refuse_removed(raw: Table, label: str) -> None:
    for (section, key), instead in _REMOVED.items():
        table = raw.get(section)
        if isinstance(table, dict) and key in table:
            raise ConfigError(f"{label}: [{section}] {key} was removed: {instead}; delete the line")


def _kind(section: str, key: str) -> object:
    return _SECTIONS[section].model_fields[key].annotation


def _anchor_paths(raw: Table, base: Path) -> None:
    """Make relative path values in the file relative to the file's directory."""
    for section, model in _SECTIONS.items():
        table = raw.get(section)
        if not isinstance(table, dict):
            continue
        for key, field in model.model_fields.items():
            value = table.get(key)
            if field.annotation is Path and isinstance(value, str):
                table[key] = base / value


def _apply_environment(raw: Table, environ: Mapping[str, str]) -> dict[tuple[str, str], str]:
    """Copy MAILHOST_<SECTION>_<KEY> values into `raw`; returns which variable set which key."""
    origins: dict[tuple[str, str], str] = {}
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name in RESERVED_VARIABLES:
            continue
        section, key = _setting_named(name)
        table = raw.setdefault(section, {})
        if isinstance(table, dict):  # otherwise validation reports the file's mistake
            table[key] = _from_environment(name, value, _kind(section, key))
            origins[(section, key)] = name
    return origins


def _setting_named(variable: str) -> tuple[str, str]:
    section, _, key = variable.removeprefix(ENV_PREFIX).lower().partition("_")
    if section not in _SECTIONS:
        raise ConfigError(
            f"environment {variable}: no such setting; sections are {', '.join(_SECTIONS)}"
        )
    if (section, key) in _REMOVED:
        raise ConfigError(
            f"environment {variable}: [{section}] {key} was removed: "
            f"{_REMOVED[(section, key)]}; unset the variable"
        )
    if key not in _SECTIONS[section].model_fields:
        keys = ", ".join(_SECTIONS[section].model_fields)
        raise ConfigError(f"environment {variable}: no such setting; [{section}] has {keys}")
    return section, key


def _from_environment(variable: str, value: str, kind: object) -> object:
    if kind is bool:
        flag = value.strip().lower()
        if flag in ("true", "yes", "on", "1"):
            return True
        if flag in ("false", "no", "off", "0"):
            return False
        raise ConfigError(f"environment {variable}: not a boolean (use true or false): {value!r}")
    if kind is int:
        try:
            return int(value.strip())
        except ValueError:
            raise ConfigError(f"environment {variable}: not an integer: {value!r}") from None
    if kind is float:
        try:
            return float(value.strip())
        except ValueError:
            raise ConfigError(f"environment {variable}: not a number: {value!r}") from None
    if kind is Path:
        return Path(value).absolute()
    return value


def _fill_defaults(raw: Table, default_data_dir: Path) -> None:
    for section in _SECTIONS:
        raw.setdefault(section, {})
    server = raw["server"]
    if not isinstance(server, dict):
        return
    if "hostname" not in server:
        server["hostname"] = _default_hostname()
    data_dir = server.setdefault("data_dir", default_data_dir)
    if not isinstance(data_dir, Path):
        data_dir = default_data_dir  # validation names the bad value; derive from something
    for (section, key), derive in _DERIVED.items():
        table = raw[section]
        if isinstance(table, dict) and key not in table:
            table[key] = derive(data_dir)
    web = raw["web"]
    if isinstance(web, dict) and "public_url" not in web:
        web["public_url"] = _derived_public_url(server.get("hostname"), web.get("port"))


def _derived_public_url(hostname: object, port: object) -> str:
    """The default from raw values; a bad host name or port is reported under its own key."""
    name = hostname.strip().lower().removesuffix(".") if isinstance(hostname, str) else ""
    if host_name_problem(name) is not None:
        name = "localhost"  # a stand-in: validation fails on [server] hostname anyway
    default_port = WebSettings.model_fields["port"].default
    number = port if isinstance(port, int) and 0 <= port <= 65535 else default_port
    return default_public_url(name, number)


def _default_hostname() -> str:
    # getfqdn may consult the resolver; this runs once at start-up, before serving.
    name = socket.getfqdn().lower()
    return name if host_name_problem(name) is None else "localhost"


def _describe(error: ErrorDetails, label: str, origins: Mapping[tuple[str, str], str]) -> str:
    loc = error["loc"]
    section = str(loc[0])
    key = str(loc[1]) if len(loc) > 1 else None
    variable = origins.get((section, key)) if key is not None else None
    if variable is not None:  # the variable's name already says which key
        return f"environment {variable}: {_problem(error, section, key)}"
    where = f"[{section}]" if key is None else f"[{section}] {key}"
    return f"{label}: {where}: {_problem(error, section, key)}"


# pydantic's error types for the built-in kinds, in this file's words.
_TYPE_PROBLEMS = {
    "model_type": "must be a table of keys",
    "int_type": "must be an integer (got {!r})",
    "int_parsing": "must be an integer (got {!r})",
    "int_from_float": "must be an integer (got {!r})",
    "bool_type": "must be true or false (got {!r})",
    "bool_parsing": "must be true or false (got {!r})",
    "string_type": "must be a string (got {!r})",
    "path_type": "must be a path (got {!r})",
}


def _problem(error: ErrorDetails, section: str, key: str | None) -> str:
    kind = error["type"]
    if kind == "extra_forbidden" and key is None:
        return f"unknown section; sections are {', '.join(_SECTIONS)}"
    if kind == "extra_forbidden":
        return f"unknown key; [{section}] has {', '.join(_SECTIONS[section].model_fields)}"
    if kind in _TYPE_PROBLEMS:
        return _TYPE_PROBLEMS[kind].format(error.get("input"))
    return error["msg"]


def render_default_toml(data_dir: Path, hostname: str) -> str:
    """The file `mailhost init` writes into `data_dir`; loading it gives the defaults."""
    try:
        checked = _host_name(hostname)
    except PydanticCustomError as exc:
        raise ConfigError(f"hostname: {exc.message()}") from None
    lines = [
        "# mailhost configuration. Any key can be overridden from the environment as",
        "# MAILHOST_<SECTION>_<KEY>, for example MAILHOST_MX_PORT=25.",
        "# Commented keys show defaults derived from the data directory.",
    ]
    for section, model in _SECTIONS.items():
        lines += ["", f"# {model.__doc__}", f"[{section}]"]
        for key, field in model.model_fields.items():
            if (section, key) == ("server", "hostname"):
                lines.append(f"hostname = {_toml(checked)}")
            elif (section, key) == ("web", "public_url"):
                port = WebSettings.model_fields["port"].default
                lines.append(f"# {key} = {_toml(default_public_url(checked, port))}")
            elif (section, key) in _DERIVED:
                derived = _DERIVED[(section, key)](data_dir.absolute())
                lines.append(f"# {key} = {_toml(derived)}")
            else:
                lines.append(f"{key} = {_toml(field.get_default(call_default_factory=True))}")
    return "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml(str(k))} = {_toml(str(v))}" for k, v in value.items()) + "}"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(str(item)) for item in value) + "]"
    # JSON strings are valid TOML basic strings when non-ASCII is left unescaped
    # (TOML forbids the surrogate escapes json.dumps would otherwise write).
    return json.dumps("" if value is None else str(value), ensure_ascii=False)
