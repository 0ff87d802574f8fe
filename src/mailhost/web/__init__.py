"""The control panel and the REST API: one FastAPI app over the same services."""
