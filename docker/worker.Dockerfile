# The worker image: TensorFlow with its CUDA libraries from PyPI, runs on CPU when no GPU is present.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml ./
COPY docker/requirements_for.py docker/
RUN python docker/requirements_for.py worker > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt
COPY backend backend
COPY worker worker
ENV PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
CMD ["celery", "-A", "worker.celery_app", "worker", "-Q", "training", "-c", "1", "--pool", "solo", "--loglevel", "INFO"]
