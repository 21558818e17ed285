# syntax=docker/dockerfile:1
#
# s2cvpn container image.
#
#   docker build -t s2cvpn:0.1.0 .
#   docker run --rm -p 8080:8080 -e S2CVPN_DATABASE_URL=postgresql://... s2cvpn:0.1.0
#
# Two stages: "build" installs the project and its pinned dependencies into a virtual
# environment at /opt/s2cvpn; "runtime" copies only that environment onto a clean slim
# image, so pip caches and build leftovers never reach the final image. Nothing secret is
# baked in: the database URL and the external issuer settings come from the environment at
# run time (see deploy/README.md). Signing keys live in the database.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/s2cvpn
ENV PATH=/opt/s2cvpn/bin:$PATH

WORKDIR /build
# Only what `pip install .` reads; .dockerignore keeps the rest of the tree out.
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . \
 && python -m compileall -q /opt/s2cvpn/lib \
 && s2cvpn --help > /dev/null


FROM ${PYTHON_IMAGE} AS runtime

# Fixed, non-root identity. deploy/k8s/*.yaml and deploy/compose.yaml use the same
# numbers (runAsUser / runAsGroup / fsGroup); change them together.
RUN groupadd --system --gid 10001 s2cvpn \
 && useradd --system --uid 10001 --gid 10001 \
        --home-dir /var/lib/s2cvpn --create-home --shell /usr/sbin/nologin s2cvpn

COPY --from=build /opt/s2cvpn /opt/s2cvpn

ENV PATH=/opt/s2cvpn/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# Writable home for the SQLite default (sqlite:///./s2cvpn.db); production points
# S2CVPN_DATABASE_URL at PostgreSQL and may run with a read-only root filesystem.
WORKDIR /var/lib/s2cvpn
USER 10001:10001

EXPOSE 8080

# No curl in the slim image: probe the liveness endpoint with the interpreter.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/health/live', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["s2cvpn"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
