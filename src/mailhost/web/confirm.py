"""One confirmation pattern for every destructive or disruptive panel action.

The list links to a page (GET) that says what will happen; its form posts the
action with `confirm=yes`. A post without it (an old form, a crafted request, a
click through a stale page) is sent to that page and never acted on. So each such
action takes two deliberate steps, works without JavaScript, and a reload of the
page that follows repeats nothing (the action answers with a redirect).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Form, Request, Response
from fastapi.responses import RedirectResponse

from mailhost.web.pages import render

CONFIRMED = "yes"
Confirm = Annotated[str, Form(max_length=10)]


@dataclass(frozen=True, slots=True)
class Confirmation:
    """What the confirmation page shows and where its two choices lead."""

    title: str  # the question, e.g. "Remove user alice@example.test?"
    consequences: tuple[str, ...]  # what will happen, one sentence each
    button: str  # the label of the button that does it
    action: str  # where that button posts
    back: str  # where "Keep it" leads
    fields: tuple[tuple[str, str], ...] = ()  # posted beside confirm=yes
    deletes: bool = True  # cannot be undone (shown as a warning)


async def confirmation_page(request: Request, confirmation: Confirmation) -> Response:
    return await render(request, "confirm.html", confirmation=confirmation)


def is_confirmed(confirm: str) -> bool:
    return confirm == CONFIRMED


def ask_first(page: str) -> Response:
    """The answer to an unconfirmed post: its confirmation page, by redirect."""
    return RedirectResponse(page, status_code=303)
