"""`[delivery] routes`: next hops per domain from the file or the environment; errors name it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailhost.errors import ConfigError
from mailhost.settings import Smarthost, load_settings, render_default_toml


def write(data_dir: Path, text: str) -> None:
    (data_dir / "mailhost.toml").write_text(text)


def test_routes_from_the_file_are_normalised(tmp_path: Path) -> None:
    write(
        tmp_path,
        '[delivery]\nroutes = {"Partner.Example." = "10.0.0.5", "b.test" = "[::1]:2526"}\n',
    )
    routes = load_settings(None, tmp_path, {}).delivery.routes
    assert routes == {
        "partner.example": Smarthost("10.0.0.5", 25),
        "b.test": Smarthost("::1", 2526),
    }


def test_routes_from_the_environment(tmp_path: Path) -> None:
    environ = {"MAILHOST_DELIVERY_ROUTES": "a.test=127.0.0.1:2526, b.test=relay.b.test:587"}
    routes = load_settings(None, tmp_path, environ).delivery.routes
    assert routes == {
        "a.test": Smarthost("127.0.0.1", 2526),
        "b.test": Smarthost("relay.b.test", 587),
    }


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("routes = 5", '[delivery] routes: must be a table such as {"example.net" = '),
        ('routes = {"x.test" = ""}', "[delivery] routes: route for x.test needs host:port"),
        ('routes = {"bad domain" = "h:25"}', "route key must be a domain name (got 'bad domain')"),
        ('routes = {"x.test" = "h:99999"}', "must be host:port such as relay.example.net:25"),
    ],
)
def test_bad_routes_are_refused_naming_the_key(tmp_path: Path, toml: str, message: str) -> None:
    write(tmp_path, f"[delivery]\n{toml}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(None, tmp_path, {})
    assert message in caught.value.message


def test_bad_routes_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, tmp_path, {"MAILHOST_DELIVERY_ROUTES": "no-equals-sign"})
    assert caught.value.message.startswith("environment MAILHOST_DELIVERY_ROUTES: must be")


def test_default_file_has_empty_routes_and_loads_back(tmp_path: Path) -> None:
    text = render_default_toml(tmp_path, "mx.example.com")
    assert "routes = {}" in text.splitlines()
    write(tmp_path, text)
    assert load_settings(None, tmp_path, {}).delivery.routes == {}
