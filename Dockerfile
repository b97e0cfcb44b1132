# qasdk: the SDK and the task server (`qasdk serve`, `qasdk worker`, `qasdk sync`) in one image.
#
#   docker build -t qasdk .
#
# Two stages: the builder makes a virtualenv with the repo's wheel and its dependencies; the
# final image is Debian's python3 plus that virtualenv, with no compilers and a non-root user.
# No registry reachable? Build the base yourself (README, "Deploy"):
#   debootstrap --variant=minbase bookworm DIR && tar -C DIR -c . | docker import - debian:bookworm-slim
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS builder
# A PyPI mirror or proxy, when pypi.org is not reachable from the build.
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG PIP_EXTRA_INDEX_URL=
ENV PIP_INDEX_URL=${PIP_INDEX_URL} \
    PIP_EXTRA_INDEX_URL=${PIP_EXTRA_INDEX_URL} \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
# A proxy's own CA, if the network has one (deploy/ca-certificates/README.md): build stage only.
COPY deploy/ca-certificates/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null 2>&1 || true
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt
RUN python3 -m venv /opt/qasdk
WORKDIR /src
# Dependencies first, from the project file alone: this layer is rebuilt only when
# pyproject.toml changes, not at every change of the code.
# (README.md, the package's long description, is an empty stand-in here.)
COPY pyproject.toml ./
RUN mkdir -p qasdk server/qasdk_server \
    && touch README.md qasdk/__init__.py server/qasdk_server/__init__.py \
    && /opt/qasdk/bin/pip install '.[server,otel]' \
    && /opt/qasdk/bin/pip uninstall -y qasdk
# Then the code, as a wheel (no editable paths into /src).
COPY README.md ./
COPY qasdk ./qasdk
COPY server ./server
RUN /opt/qasdk/bin/pip install --no-deps . \
    && /opt/qasdk/bin/python -m compileall -q /opt/qasdk/lib \
    && /opt/qasdk/bin/qasdk --version

FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
    && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin qasdk \
    && mkdir -p /app/tools \
    && chown -R qasdk:qasdk /app
COPY --from=builder /opt/qasdk /opt/qasdk
ENV PATH=/opt/qasdk/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    QASDK_SERVER_HOST=0.0.0.0 \
    QASDK_SERVER_PORT=8000
# /app/tools is the module root: tools are mounted (or copied) under it as the package they
# were synced as (`tools/weather.py` → /app/tools/tools/weather.py, module `tools.weather`).
WORKDIR /app/tools
USER qasdk
EXPOSE 8000
# /health answers 200 while the database does (see qasdk_server/routes/health.py). For the
# API only: compose turns it off for workers and `sync`, which serve no HTTP.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('QASDK_SERVER_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["qasdk"]
CMD ["serve", "--no-worker"]
