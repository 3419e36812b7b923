"""The HTTP server layer: what uvicorn itself does not bound (see `protocol`)."""
