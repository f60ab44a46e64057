# One image for every service in docker-compose.yml: worker, beat, flower, sandbox, metrics.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY . .
RUN pip install . && rm -rf /src

# Never run the worker as root (Celery warns, and a task bug should not own the container).
RUN useradd --create-home --uid 10001 engage
USER engage
# Beat keeps its schedule state (celerybeat-schedule) in the working directory.
WORKDIR /home/engage

EXPOSE 5555 8099 9100 9101
CMD ["celery", "-A", "tasks", "worker", "--pool", "threads", "--concurrency", "16", "--loglevel", "INFO"]
