"""/api/docs: the REST API's reference for people (Swagger UI), served from here.

Swagger UI's script and stylesheet are the files the fastapi-offline package ships,
served under /api/docs/assets: the page works on a network without Internet access
and loads nothing from a CDN. It reads the same /openapi.json that scripts read.

The panel's policy runs no script at all (web/app.py). Swagger UI is a script, so this
one page has its own policy: scripts from this origin only (Swagger UI and its start-up
file, never an inline script), and otherwise as narrow as the panel's.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/api/docs"
ASSETS_PATH = "/api/docs/assets"

DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mailhost API</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
<link rel="stylesheet" href="/static/api-docs.css">
</head>
<body>
<nav class="api-docs-nav">
  <a href="/">Control panel</a> · <a href="/tokens">API tokens</a> ·
  <a href="/openapi.json">OpenAPI document</a>
</nav>
<div id="swagger-ui"><noscript><p>This page needs JavaScript; the same reference is
<a href="/openapi.json">/openapi.json</a>.</p></noscript></div>
<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script src="/static/api-docs.js"></script>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


@router.get(DOCS_PATH)
async def api_docs() -> HTMLResponse:
    return HTMLResponse(PAGE, headers={"Content-Security-Policy": DOCS_CSP})


@router.get("/docs")
async def docs() -> RedirectResponse:
    """Where FastAPI apps usually keep their docs."""
    return RedirectResponse(DOCS_PATH, status_code=308)


def assets() -> StaticFiles:
    """Swagger UI's files, from the installed fastapi-offline package."""
    return StaticFiles(packages=[("fastapi_offline", "static")])
