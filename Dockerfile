# syntax=docker/dockerfile:1.7
# The marketq images, one build target per service, built from the repository root (the
# uv workspace and its one lock file live there):
#   docker build --target api    -t marketq-api .
#   docker build --target worker -t marketq-worker .
#   docker build --target beat   -t marketq-beat .
# Each target installs only its service and the libraries it imports, from uv.lock
# (`uv sync --package`): the worker and the API get libs/providers (the API without the
# yahoo extra), no image gets libs/cli. Every image has `marketq-migrate`, the migration command.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

# --- workspace: uv and every member's pyproject.toml (uv reads the whole workspace) ------
FROM ${PYTHON_IMAGE} AS workspace
COPY --from=uv /uv /usr/local/bin/uv
# Bytecode is compiled here because the runtime root filesystem is read-only.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/marketq
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY libs/common/pyproject.toml libs/common/pyproject.toml
COPY libs/providers/pyproject.toml libs/providers/pyproject.toml
COPY libs/cli/pyproject.toml libs/cli/pyproject.toml
COPY services/api/pyproject.toml services/api/pyproject.toml
COPY services/worker/pyproject.toml services/worker/pyproject.toml
COPY services/beat/pyproject.toml services/beat/pyproject.toml

# --- build-<service>: exactly what uv.lock pins, dependencies first (their own layer),
# then the sources it imports; --no-editable: the runtime copies the environment alone.
FROM workspace AS build-api
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package marketq-api --no-install-workspace
COPY libs/common/src libs/common/src
COPY libs/providers/src libs/providers/src
COPY services/api/src services/api/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package marketq-api --no-editable

FROM workspace AS build-worker
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package marketq-worker --no-install-workspace
COPY libs/common/src libs/common/src
COPY libs/providers/src libs/providers/src
COPY services/worker/src services/worker/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package marketq-worker --no-editable

FROM workspace AS build-beat
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package marketq-beat --no-install-workspace
COPY libs/common/src libs/common/src
COPY services/beat/src services/beat/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package marketq-beat --no-editable

# --- runtime: what every image shares ----------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.source="https://github.com/marketq/marketq"
# A numeric non-root user, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
RUN groupadd --system --gid 10001 marketq \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin marketq
# Nothing is written outside /tmp (an emptyDir in the chart): no bytecode, HOME and
# TMPDIR point there.
ENV PATH=/opt/marketq/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp
WORKDIR /opt/marketq
USER 10001:10001

# --- the images ------------------------------------------------------------------------
# Exec-form entrypoints, no shell: each execs its server, which is PID 1 and gets SIGTERM.
FROM runtime AS api
LABEL org.opencontainers.image.title="marketq-api" \
      org.opencontainers.image.description="the marketq HTTP API (FastAPI on uvicorn)"
COPY --from=build-api /opt/marketq /opt/marketq
EXPOSE 8000
ENTRYPOINT ["marketq-api"]

FROM runtime AS worker
LABEL org.opencontainers.image.title="marketq-worker" \
      org.opencontainers.image.description="a marketq Celery worker for one queue (--queue)"
COPY --from=build-worker /opt/marketq /opt/marketq
EXPOSE 9101
# celery gets SIGTERM remapped to a soft shutdown. The chart passes --queue.
ENTRYPOINT ["marketq-worker"]
CMD ["--queue", "default"]

FROM runtime AS beat
LABEL org.opencontainers.image.title="marketq-beat" \
      org.opencontainers.image.description="the marketq scheduler (Celery beat with RedBeat)"
COPY --from=build-beat /opt/marketq /opt/marketq
EXPOSE 9102
# celery beat releases the RedBeat lock on SIGTERM.
ENTRYPOINT ["marketq-beat"]
