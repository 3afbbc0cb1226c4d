"""Real processes for the integration and browser tests: Valkey, a Celery worker, uvicorn."""
