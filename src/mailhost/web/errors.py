"""MailhostError → an HTML error page or `{"code", "message"}` JSON, with its HTTP status.

The one mapping table of the web edge. LimitReached answers 409 Conflict, not
403: the request is allowed for this login, but the account's current state
(its plan is full) stands in the way, and changes to that state (removing a
domain, a bigger plan) make the same request succeed.
"""

from __future__ import annotations

import logging
import secrets

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException

from mailhost.errors import (
    AlreadyExists,
    BodyTooLarge,
    ConfigError,
    InUse,
    InvalidInput,
    LimitReached,
    MailboxInUse,
    MailhostError,
    NotFound,
    NotPermitted,
    OwnershipNotProven,
    TemporaryFailure,
)
from mailhost.web.dependencies import ApiAuthRequired, FormRejected, LoginRequired
from mailhost.web.forms import FieldRefused
from mailhost.web.pages import render

log = logging.getLogger("mailhost.web")

# Most specific first: the first matching row gives the status.
STATUS: tuple[tuple[type[MailhostError], int], ...] = (
    (NotFound, 404),  # also what another tenant's objects answer
    (AlreadyExists, 409),
    (InUse, 409),
    (LimitReached, 409),
    (MailboxInUse, 409),
    (OwnershipNotProven, 409),
    (NotPermitted, 403),
    (BodyTooLarge, 413),
    (InvalidInput, 422),
    (TemporaryFailure, 503),
    (ConfigError, 500),
)


def status_for(error: MailhostError) -> int:
    for kind, status in STATUS:
        if isinstance(error, kind):
            return status
    return 400


def is_api(request: Request) -> bool:
    return is_api_path(request.url.path)


def is_api_path(path: str) -> bool:
    """The API answers errors in JSON; everything else is for people."""
    return path.startswith("/api/")


def error_json(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


async def error_page(request: Request, status: int, message: str) -> Response:
    return await render(request, "error.html", status=status, error=message, status_code=status)


async def _mailhost_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MailhostError)
    status = status_for(exc)
    if is_api(request):
        return error_json(status, exc.code, exc.message)
    return await error_page(request, status, exc.message)


async def _field_refused(request: Request, exc: Exception) -> Response:
    """A refusal about one request field (web/forms.py): the API names the field."""
    assert isinstance(exc, FieldRefused)
    error = exc.error
    status = status_for(error)
    if is_api(request):
        body = {"code": error.code, "field": exc.field, "message": error.message}
        return JSONResponse(body, status_code=status)
    return await error_page(request, status, error.message)


def _describe(exc: RequestValidationError) -> str:
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where}: {error.get('msg', 'invalid')}" if where else error["msg"])
    return "; ".join(problems) or "the request is not valid"


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    message = _describe(exc)
    if is_api(request):
        return error_json(422, InvalidInput.code, message)
    return await error_page(request, 422, f"The form was not complete or not valid: {message}")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    if is_api(request):
        return error_json(exc.status_code, code, str(exc.detail), **(exc.headers or {}))
    message = "There is no such page." if exc.status_code == 404 else str(exc.detail)
    return await error_page(request, exc.status_code, message)


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    target = "/" if exc.level is None else f"/login/{exc.level}"
    return RedirectResponse(target, status_code=303)


async def _form_rejected(request: Request, exc: Exception) -> Response:
    message = (
        "This form has expired or was sent from another site. "
        "Go back, reload the page and try again."
    )
    return await error_page(request, 403, message)


async def _api_auth_required(request: Request, exc: Exception) -> Response:
    return error_json(
        401,
        "not_authenticated",
        "send an API token from the control panel as 'Authorization: Bearer <token>'",
        **{"WWW-Authenticate": "Bearer"},
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    incident = secrets.token_hex(4)
    log.exception("request %s %s failed (incident %s)", request.method, request.url.path, incident)
    message = f"Something went wrong on our side (incident {incident}). Please try again."
    if is_api(request):
        return error_json(500, "internal_error", message)
    return await error_page(request, 500, message)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(MailhostError, _mailhost_error)
    app.add_exception_handler(FieldRefused, _field_refused)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(FormRejected, _form_rejected)
    app.add_exception_handler(ApiAuthRequired, _api_auth_required)
    app.add_exception_handler(Exception, _unexpected)
