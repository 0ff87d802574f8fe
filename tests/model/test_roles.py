"""Role addresses and the bare <postmaster> of RCPT TO."""

from __future__ import annotations

import pytest

from mailhost.errors import InvalidAddress
from mailhost.model.names import DomainName, EmailAddress
from mailhost.model.roles import Role, forward_path, role_of


@pytest.mark.parametrize(
    ("raw", "role"),
    [
        ("postmaster@a.test", Role.POSTMASTER),
        ("PostMaster@a.test", Role.POSTMASTER),
        ("ABUSE@a.test", Role.ABUSE),
        ("postmasters@a.test", None),
        ("webmaster@a.test", None),
    ],
)
def test_roles_are_matched_case_insensitively(raw: str, role: Role | None) -> None:
    assert role_of(EmailAddress.parse(raw)) is role


@pytest.mark.parametrize("raw", ["postmaster", "PostMaster", "<POSTMASTER>"])
def test_bare_postmaster_is_the_servers_even_on_a_single_label_host(raw: str) -> None:
    assert forward_path(raw, "localhost") == EmailAddress("postmaster", DomainName("localhost"))
    assert str(forward_path(raw, "mx.hosting.test")) == "postmaster@mx.hosting.test"


def test_other_forward_paths_are_parsed_as_addresses() -> None:
    assert forward_path("Bob@Example.test", "mx.hosting.test") == EmailAddress.parse(
        "Bob@example.test"
    )
    for raw in ("abuse", "bob", "postmaster@"):
        with pytest.raises(InvalidAddress):
            forward_path(raw, "mx.hosting.test")
