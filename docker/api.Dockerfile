# The API image: FastAPI, Celery client and Redis client, and no TensorFlow.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml ./
COPY docker/requirements_for.py docker/
RUN python docker/requirements_for.py api > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt
COPY backend backend
COPY frontend frontend
ENV PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["uvicorn", "backend.main:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]
