"""The REST API: versioned routers and the pydantic models that are its contract."""
