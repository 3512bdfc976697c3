"""The REST API: FastAPI routes over the facade (``create_app(settings)``)."""
