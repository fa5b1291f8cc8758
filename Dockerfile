# syntax=docker/dockerfile:1
# otaku images. Targets:
#   serve (default): the API (`otaku serve`) and the web UI (`otaku ui`); no torch (venv 634 MB)
#   jobs:            scheduler, retrain, simulate-users, init; adds torch (CPU) and
#                    sentence-transformers for synopsis embeddings
# docker build -t otaku .            docker build --target jobs -t otaku-jobs .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/otaku
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/otaku/bin/pip install ".[fetch]"

FROM build AS build-jobs
# The CPU build of torch first, from PyTorch's own index: the default one pulls CUDA (GBs).
RUN /opt/otaku/bin/pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0" \
    && /opt/otaku/bin/pip install ".[train,fetch]"

FROM ${PYTHON_IMAGE} AS runtime
# libgomp1: LightGBM's OpenMP runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin otaku \
    && mkdir -p /var/lib/otaku \
    && chown otaku:otaku /var/lib/otaku
ENV PATH=/opt/otaku/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    OTAKU_HOME=/var/lib/otaku \
    OTAKU_API_HOST=0.0.0.0 \
    OTAKU_UI_HOST=0.0.0.0 \
    OTAKU_HEALTHCHECK_URL=http://127.0.0.1:8000/healthz
WORKDIR /var/lib/otaku
USER 10001:10001
# The API's liveness route by default; the UI container sets OTAKU_HEALTHCHECK_URL to its own.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['OTAKU_HEALTHCHECK_URL'], timeout=4)"]

FROM runtime AS jobs
COPY --from=build-jobs /opt/otaku /opt/otaku
# The scheduler has no HTTP port: it is healthy while it runs.
HEALTHCHECK NONE
CMD ["otaku", "scheduler"]

FROM runtime AS serve
COPY --from=build /opt/otaku /opt/otaku
EXPOSE 8000 8501
CMD ["otaku", "serve"]
