"""Version 1 of the REST API: /api/v1, documented at /openapi.json."""

from __future__ import annotations

from fastapi import APIRouter

from mailhost.web.api.v1 import accounts, deliveries, domains, users
from mailhost.web.api.v1.params import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)
router.include_router(accounts.router)
router.include_router(domains.router)
router.include_router(users.router)
router.include_router(deliveries.router)
