"""Settings: defaults, the TOML file, environment overrides, and errors that name the key."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from mailhost.errors import ConfigError
from mailhost.model.quantities import ByteSize
from mailhost.settings import (
    CONFIG_NAME,
    LogFormat,
    LogLevel,
    Settings,
    Smarthost,
    SyncMethod,
    load_settings,
    render_default_toml,
)


def write_config(directory: Path, text: str) -> Path:
    path = directory / CONFIG_NAME
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path | None, data_dir: Path | None, environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, data_dir, environ)
    assert caught.value.code == "config_error"
    return caught.value.message


def test_defaults_without_a_file(tmp_path: Path) -> None:
    settings = load_settings(None, tmp_path, {})

    assert settings.server.data_dir == tmp_path
    assert settings.server.hostname in {socket.getfqdn().lower(), "localhost"}
    assert settings.database.url == f"sqlite+aiosqlite:///{tmp_path}/mailhost.db"
    assert (settings.mx.host, settings.mx.port, settings.mx.enabled) == ("127.0.0.1", 2525, True)
    assert settings.mx.max_message_size == ByteSize(25_000_000)
    assert (settings.submission.port, settings.submissions.port) == (2587, 2465)
    assert (settings.pop3.port, settings.pop3s.port, settings.web.port) == (2110, 2995, 8080)
    assert settings.pop3.allow_plaintext_auth is False
    assert settings.pop3.idle_timeout == 600
    assert settings.tls.certs_dir == tmp_path / "certs"
    assert settings.tls.ca_dir == tmp_path / "ca"
    assert settings.mail.maildir_root == tmp_path / "mail"
    assert settings.delivery.smarthost is None
    assert settings.delivery.queue_lifetime_hours == 120
    assert settings.delivery.retry_base_seconds == 60
    assert settings.delivery.dkim is True
    assert settings.auth.cache_seconds == 300
    assert settings.auth.penalty_max_seconds == 15.0
    assert settings.auth.penalty_window_seconds == 900


def test_values_from_the_file(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
        [server]
        hostname = "MX.Example.COM."
        [mx]
        host = "::1"
        port = 0
        max_message_size = "10MB"
        [pop3]
        allow_plaintext_auth = true
        [tls]
        certs_dir = "keys/certs"
        [delivery]
        smarthost = "relay.example.net:587"
        """,
    )

    settings = load_settings(path, None, {})

    assert settings.server.hostname == "mx.example.com"
    assert (settings.mx.host, settings.mx.port) == ("::1", 0)
    assert settings.mx.max_message_size == ByteSize(10_000_000)
    assert settings.pop3.allow_plaintext_auth is True
    assert settings.tls.certs_dir == tmp_path / "keys" / "certs"  # relative to the file
    assert settings.tls.ca_dir == tmp_path / "ca"
    assert settings.delivery.smarthost == Smarthost("relay.example.net", 587)


def test_data_dir_in_the_file_moves_every_derived_path(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[server]\ndata_dir = "/srv/mailhost"\n')

    settings = load_settings(path, None, {})

    assert settings.server.data_dir == Path("/srv/mailhost")
    assert settings.database.url == "sqlite+aiosqlite:////srv/mailhost/mailhost.db"
    assert settings.mail.maildir_root == Path("/srv/mailhost/mail")


def test_environment_beats_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[mx]\nport = 25\nenabled = true\n[database]\nurl = "a://b"\n')
    environ = {
        "MAILHOST_MX_PORT": "2626",
        "MAILHOST_MX_ENABLED": "false",
        "MAILHOST_DATABASE_URL": "postgresql+asyncpg://mail@127.0.0.1/mail",
        "MAILHOST_SERVER_HOSTNAME": "mail.example.org",
        "MAILHOST_MX_MAX_MESSAGE_SIZE": "1GiB",
        "MAILHOST_MAIL_MAILDIR_ROOT": "/var/mail/hosted",
        "MAILHOST_DATA_DIR": "reserved for the CLI, not a setting",
        "PATH": "/usr/bin",
    }

    settings = load_settings(path, None, environ)

    assert settings.mx.port == 2626
    assert settings.mx.enabled is False
    assert settings.database.url == "postgresql+asyncpg://mail@127.0.0.1/mail"
    assert settings.server.hostname == "mail.example.org"
    assert settings.mx.max_message_size == ByteSize(2**30)
    assert settings.mail.maildir_root == Path("/var/mail/hosted")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[mx]\nport = 70000\n", "[mx] port: must be between 0 and 65535 (got 70000)"),
        ("[mx]\nport = -1\n", "[mx] port: must be between 0 and 65535 (got -1)"),
        ('[mx]\nport = "25"\n', "[mx] port: must be an integer (got '25')"),
        ("[mx]\nport = true\n", "[mx] port: must be an integer (got True)"),
        (
            '[mx]\nmax_message_size = "lots"\n',
            "[mx] max_message_size: 'lots' is not a size; write a number with a unit",
        ),
        ("[mx]\nprot = 25\n", "[mx] prot: unknown key; [mx] has host, port, enabled"),
        ("[smtp]\nport = 25\n", "[smtp]: unknown section; sections are server, database"),
        ("mx = 25\n", "[mx]: must be a table of keys"),
        ('[mx]\nenabled = "yes"\n', "[mx] enabled: must be true or false (got 'yes')"),
        ('[mx]\nhost = "not a host"\n', "[mx] host: must be an IP address or a host name"),
        ('[server]\nhostname = "a_b.example"\n', "[server] hostname: must be a host name"),
        ("[pop3]\nidle_timeout = 0\n", "[pop3] idle_timeout: must be at least 1 (got 0)"),
        ("[auth]\ncache_seconds = -5\n", "[auth] cache_seconds: must be at least 0 (got -5)"),
        ('[database]\nurl = "mailhost.db"\n', "[database] url: must be a SQLAlchemy URL"),
        ('[delivery]\nsmarthost = "a:b:c"\n', "[delivery] smarthost: must be host:port"),
        ('[delivery]\nsmarthost = "relay:70000"\n', "[delivery] smarthost: must be host:port"),
        ("[tls]\ncerts_dir = 5\n", "[tls] certs_dir: must be a path (got 5)"),
        ("[mx\nport = 1\n", "invalid TOML: "),
    ],
)
def test_a_bad_file_value_names_the_file_and_the_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write_config(tmp_path, text)

    message = config_error(path, None, {})

    assert message.startswith(f"{path}: ")
    assert expected in message


def test_every_bad_value_is_reported_at_once(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[mx]\nport = 70000\n[web]\nport = 80000\n")

    assert config_error(path, None, {}).splitlines() == [
        f"{path}: [mx] port: must be between 0 and 65535 (got 70000)",
        f"{path}: [web] port: must be between 0 and 65535 (got 80000)",
    ]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("MAILHOST_MX_PORT", "abc", "environment MAILHOST_MX_PORT: not an integer: 'abc'"),
        (
            "MAILHOST_MX_PORT",
            "70000",
            "environment MAILHOST_MX_PORT: must be between 0 and 65535 (got 70000)",
        ),
        (
            "MAILHOST_MX_ENABLED",
            "maybe",
            "environment MAILHOST_MX_ENABLED: not a boolean (use true or false): 'maybe'",
        ),
        (
            "MAILHOST_MX_PROT",
            "25",
            "environment MAILHOST_MX_PROT: no such setting; "
            "[mx] has host, port, enabled, max_connections, max_connections_per_client,",
        ),
        (
            "MAILHOST_SMTP_PORT",
            "25",
            "environment MAILHOST_SMTP_PORT: no such setting; sections are server, database,",
        ),
        (
            "MAILHOST_MX_MAX_MESSAGE_SIZE",
            "2.5 bytes",
            "environment MAILHOST_MX_MAX_MESSAGE_SIZE: '2.5 bytes' is not a size",
        ),
    ],
)
def test_a_bad_environment_value_names_the_variable(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    assert config_error(None, tmp_path, {variable: value}).startswith(expected)


REMOVED_LOCKOUT_KEYS = (
    "max_failures_per_address",
    "max_failures_per_account",
    "failure_window_seconds",
)


@pytest.mark.parametrize("key", REMOVED_LOCKOUT_KEYS)
def test_a_removed_lockout_key_in_the_file_says_what_replaced_it(tmp_path: Path, key: str) -> None:
    path = write_config(tmp_path, f"[auth]\ncache_seconds = 60\n{key} = 5\n")

    assert config_error(path, None, {}) == (
        f"{path}: [auth] {key} was removed: mailhost now delays failing clients "
        "([auth] penalty_max_seconds) instead of locking accounts; delete the line"
    )


@pytest.mark.parametrize("key", REMOVED_LOCKOUT_KEYS)
def test_a_removed_lockout_key_in_the_environment_says_what_replaced_it(
    tmp_path: Path, key: str
) -> None:
    variable = f"MAILHOST_AUTH_{key.upper()}"

    assert config_error(None, tmp_path, {variable: "3"}) == (
        f"environment {variable}: [auth] {key} was removed: mailhost now delays failing "
        "clients ([auth] penalty_max_seconds) instead of locking accounts; unset the variable"
    )


def test_penalty_settings_from_the_file_and_the_environment(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[auth]\npenalty_max_seconds = 4\n")
    environ = {"MAILHOST_AUTH_PENALTY_WINDOW_SECONDS": "60"}

    settings = load_settings(path, None, environ)

    assert (settings.auth.penalty_max_seconds, settings.auth.penalty_window_seconds) == (4.0, 60)
    message = config_error(None, tmp_path, {"MAILHOST_AUTH_PENALTY_MAX_SECONDS": "-1"})
    assert message.startswith("environment MAILHOST_AUTH_PENALTY_MAX_SECONDS: must be a number")


def test_an_explicit_config_file_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "elsewhere.toml"

    assert config_error(missing, None, {}) == f"{missing}: no such file"


def test_without_a_file_or_a_data_directory_there_is_nothing_to_load() -> None:
    assert config_error(None, None, {}) == (
        "no configuration: give the data directory or the config file"
    )


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_settings(None, tmp_path, {})

    with pytest.raises(ValidationError):
        settings.mx.port = 25


@given(port=st.integers(min_value=-(2**20), max_value=2**20))
def test_every_port_from_0_to_65535_and_no_other_is_accepted(
    tmp_path_factory: pytest.TempPathFactory, port: int
) -> None:
    data_dir = tmp_path_factory.getbasetemp()
    environ = {"MAILHOST_POP3S_PORT": str(port)}
    if 0 <= port <= 65535:
        assert load_settings(None, data_dir, environ).pop3s.port == port
    else:
        assert config_error(None, data_dir, environ) == (
            f"environment MAILHOST_POP3S_PORT: must be between 0 and 65535 (got {port})"
        )


@pytest.mark.parametrize("directory", ["plain", 'with "quotes", spaces and ünïcode'])
def test_the_default_file_loads_back_to_the_defaults(tmp_path: Path, directory: str) -> None:
    data_dir = tmp_path / directory
    data_dir.mkdir()
    text = render_default_toml(data_dir, "mail.example.com")
    path = write_config(data_dir, text)

    loaded = load_settings(path, None, {})

    assert loaded == load_settings(None, data_dir, {"MAILHOST_SERVER_HOSTNAME": "mail.example.com"})
    assert loaded.server.hostname == "mail.example.com"
    assert loaded.tls.certs_dir == data_dir / "certs"
    assert "port = 2525" in text
    assert 'max_message_size = "25MB"' in text


def test_the_default_file_refuses_a_bad_hostname(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="hostname: must be a host name"):
        render_default_toml(tmp_path, "not a hostname")


def test_settings_is_the_whole_schema() -> None:
    # `mailhost init` writes every section; a new section must appear there too.
    text = render_default_toml(Path("/srv/mailhost"), "mail.example.com")

    for section in Settings.model_fields:
        assert f"\n[{section}]\n" in text


def test_maildir_sync_method_defaults_to_the_file_system_and_can_be_per_file(
    tmp_path: Path,
) -> None:
    assert load_settings(None, tmp_path, {}).mail.sync is SyncMethod.FILESYSTEM
    chosen = load_settings(None, tmp_path, {"MAILHOST_MAIL_SYNC": "file"})
    assert chosen.mail.sync is SyncMethod.FILE
    message = config_error(None, tmp_path, {"MAILHOST_MAIL_SYNC": "sometimes"})
    assert message.startswith("environment MAILHOST_MAIL_SYNC:"), message
    assert "filesystem" in message and "file" in message


def test_log_is_text_at_info_by_default_and_can_be_json_or_another_level(
    tmp_path: Path,
) -> None:
    default = load_settings(None, tmp_path, {}).log
    assert (default.format, default.level) == (LogFormat.TEXT, LogLevel.INFO)
    path = write_config(tmp_path, '[log]\nformat = "json"\nlevel = "warning"\n')
    chosen = load_settings(path, None, {}).log
    assert (chosen.format, chosen.level) == (LogFormat.JSON, LogLevel.WARNING)
    environ = {"MAILHOST_LOG_FORMAT": "text", "MAILHOST_LOG_LEVEL": "debug"}
    overridden = load_settings(path, None, environ).log
    assert (overridden.format, overridden.level) == (LogFormat.TEXT, LogLevel.DEBUG)
    text = render_default_toml(tmp_path, "mail.example.com")
    assert '\n[log]\nformat = "text"\nlevel = "info"\n' in text


@pytest.mark.parametrize(
    ("key", "value", "choices"),
    [("format", "xml", "'text' or 'json'"), ("level", "verbose", "'warning' or 'error'")],
)
def test_a_log_value_out_of_its_choices_is_refused_by_name(
    tmp_path: Path, key: str, value: str, choices: str
) -> None:
    variable = f"MAILHOST_LOG_{key.upper()}"
    message = config_error(None, tmp_path, {variable: value})
    assert message.startswith(f"environment {variable}: "), message
    assert choices in message
    path = write_config(tmp_path, f'[log]\n{key} = "{value}"\n')
    message = config_error(path, None, {})
    assert message.startswith(f"{path}: [log] {key}: "), message
    assert choices in message


@pytest.mark.parametrize("section", ["mx", "submission", "submissions"])
def test_smtp_listeners_have_postfix_session_limits_by_default(
    tmp_path: Path, section: str
) -> None:
    listener = getattr(load_settings(None, tmp_path, {}), section)
    assert (listener.max_connections, listener.max_connections_per_client) == (1000, 50)
    assert (listener.soft_error_limit, listener.hard_error_limit) == (10, 20)
    assert listener.error_sleep_seconds == 1.0


def test_session_limits_and_the_stop_grace_come_from_the_file_and_the_environment(
    tmp_path: Path,
) -> None:
    assert load_settings(None, tmp_path, {}).server.stop_grace_seconds == 30
    text = "[server]\nstop_grace_seconds = 5\n[mx]\nerror_sleep_seconds = 2\nhard_error_limit = 8\n"
    path = write_config(tmp_path, text)
    environ = {
        "MAILHOST_MX_ERROR_SLEEP_SECONDS": "0.05",
        "MAILHOST_SUBMISSIONS_MAX_CONNECTIONS_PER_CLIENT": "5",
    }
    from_file = load_settings(path, None, {})
    assert from_file.server.stop_grace_seconds == 5
    assert (from_file.mx.error_sleep_seconds, from_file.mx.hard_error_limit) == (2.0, 8)
    overridden = load_settings(path, None, environ)
    assert overridden.mx.error_sleep_seconds == 0.05
    assert overridden.submissions.max_connections_per_client == 5
    assert overridden.submission.max_connections_per_client == 50
    text = render_default_toml(tmp_path, "mail.example.com")
    assert "\nerror_sleep_seconds = 1.0\n" in text and "\nstop_grace_seconds = 30\n" in text


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("MAILHOST_MX_ERROR_SLEEP_SECONDS", "soon", "not a number: 'soon'"),
        ("MAILHOST_MX_ERROR_SLEEP_SECONDS", "-1", "must be a number of seconds, 0 or more"),
        ("MAILHOST_MX_ERROR_SLEEP_SECONDS", "nan", "must be a number of seconds, 0 or more"),
        ("MAILHOST_SUBMISSION_MAX_CONNECTIONS", "0", "must be at least 1 (got 0)"),
        ("MAILHOST_SERVER_STOP_GRACE_SECONDS", "0", "must be at least 1 (got 0)"),
    ],
)
def test_a_bad_session_limit_is_refused_by_name(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    message = config_error(None, tmp_path, {variable: value})
    assert message.startswith(f"environment {variable}: {expected}"), message
    path = write_config(tmp_path, '[mx]\nerror_sleep_seconds = "1s"\n')
    assert config_error(path, None, {}) == (
        f"{path}: [mx] error_sleep_seconds: must be a number of seconds, 0 or more (got '1s')"
    )


def test_web_max_body_size_is_a_size_of_1mb_by_default(tmp_path: Path) -> None:
    assert load_settings(None, tmp_path, {}).web.max_body_size == ByteSize(1_000_000)
    chosen = load_settings(None, tmp_path, {"MAILHOST_WEB_MAX_BODY_SIZE": "64KiB"})
    assert chosen.web.max_body_size == ByteSize(65_536)
    message = config_error(None, tmp_path, {"MAILHOST_WEB_MAX_BODY_SIZE": "lots"})
    assert message.startswith("environment MAILHOST_WEB_MAX_BODY_SIZE: 'lots' is not a size")
    path = write_config(tmp_path, '[web]\nmax_body_size = "big"\n')
    assert config_error(path, None, {}).startswith(f"{path}: [web] max_body_size: 'big' is not")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "http://mail.example.com:8080"),
        ({"MAILHOST_WEB_PORT": "443"}, "https://mail.example.com"),
        ({"MAILHOST_WEB_PORT": "80"}, "http://mail.example.com"),
        (
            {"MAILHOST_WEB_PUBLIC_URL": "https://panel.example.com/mh/"},
            "https://panel.example.com/mh",
        ),
        ({"MAILHOST_WEB_PUBLIC_URL": "http://[2001:db8::1]:8080"}, "http://[2001:db8::1]:8080"),
    ],
)
def test_web_public_url_defaults_to_the_host_name_and_the_panel_port(
    tmp_path: Path, environ: dict[str, str], expected: str
) -> None:
    environ = {"MAILHOST_SERVER_HOSTNAME": "mail.example.com", **environ}
    assert load_settings(None, tmp_path, environ).web.public_url == expected
    text = render_default_toml(tmp_path, "mail.example.com")
    assert '\n# public_url = "http://mail.example.com:8080"\n' in text


@pytest.mark.parametrize(
    "value",
    [
        "mail.example.com",
        "ftp://mail.example.com",
        "https://",
        "https://mail.example.com/?next=/",
        "https://mail.example.com/#top",
        "https://admin:secret@mail.example.com",
        "https://mail.example.com:99999",
    ],
)
def test_a_public_url_that_is_not_a_plain_http_url_is_refused_by_name(
    tmp_path: Path, value: str
) -> None:
    problem = (
        "must be an http:// or https:// URL without user, query or fragment, "
        f"such as https://mail.example.com (got {value!r})"
    )
    message = config_error(None, tmp_path, {"MAILHOST_WEB_PUBLIC_URL": value})
    assert message == f"environment MAILHOST_WEB_PUBLIC_URL: {problem}"
    path = write_config(tmp_path, f'[web]\npublic_url = "{value}"\n')
    assert config_error(path, None, {}) == f"{path}: [web] public_url: {problem}"
