# syntax=docker/dockerfile:1
# VideoForge: one image, every service as a command.
#
#   docker build -t videoforge .
#   docker run -p 8000:8000 -v videoforge-data:/data videoforge            # embedded
#   docker run ... videoforge gateway | gallery | worker | migrate | sweep # distributed
#
# Stages: "web" fetches the browser dependencies (hls.js) with npm ci; "builder" installs
# the package and its runtime dependencies, pinned by requirements.lock, into a venv;
# the runtime stage is python:3.11-slim with Debian's ffmpeg, the venv and nothing else.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------- web client deps
FROM ${NODE_IMAGE} AS web
WORKDIR /web
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# ------------------------------------------------------------------ python builder
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /build
# The lock pins every version; as constraints it installs only what the package needs
# at run time (the lock also records the development tools).
COPY requirements.lock pyproject.toml README.md ./
COPY src ./src
RUN pip install --constraint requirements.lock . \
    && python -c "import videoforge.cli"

# ------------------------------------------------------------------------ runtime
FROM ${PYTHON_IMAGE} AS runtime
# Debian's ffmpeg: the distribution's security updates, not a static build.
# (setpriv, from the Essential util-linux, ties each ffmpeg's life to its worker's.)
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 videoforge \
    && useradd --system --uid 10001 --gid videoforge --home-dir /data --shell /usr/sbin/nologin videoforge \
    && install -d -o videoforge -g videoforge -m 0750 /data

COPY --from=builder /opt/venv /opt/venv
# The gateway serves hls.js from ./node_modules (the working directory).
COPY --from=web /web/node_modules/hls.js/dist /app/node_modules/hls.js/dist
COPY deploy/compose/bootstrap.py deploy/docker/healthcheck.py /app/bin/

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIDEOFORGE_DATA_DIR=/data \
    HOST=0.0.0.0 \
    PORT=8000 \
    LOG_FORMAT=json

WORKDIR /app
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000

# /health of the HTTP services; the worker is checked on its metrics port
# (METRICS_PORT) — see deploy/docker/healthcheck.py.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/app/bin/healthcheck.py"]

# tini forwards SIGTERM to the service (graceful worker shutdown) and reaps ffmpeg.
ENTRYPOINT ["tini", "--", "videoforge"]
CMD ["serve"]
