# newsflow: connectors, pipeline and search API in one image; the command picks the role.
#
#   docker build -t newsflow:0.1.0 .
#   docker run --rm newsflow:0.1.0 connectors run --config /etc/newsflow/sources.yaml
#   docker run --rm newsflow:0.1.0 pipeline run
#   docker run --rm -p 8000:8000 newsflow:0.1.0            # default: serve on port 8000
#
# Reproducible: the base image is an exact tag (pin its digest with
# --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:...), every Python package comes
# from deploy/requirements.lock (its runtime part), the Debian packages are pinned to bookworm's
# versions.
# Settings: NEWSFLOW_<SECTION>__<KEY> environment variables or a TOML file in $NEWSFLOW_CONFIG.
# See docs/DEPLOY.md.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# -- builder: every wheel the application needs, and the application's own ---------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY deploy/requirements.lock deploy/requirements.lock
# The lock's runtime pins: its lines without a comment (`# dev`: tests and linters; pip).
RUN mkdir /wheels \
    && grep -v '#' deploy/requirements.lock > /wheels/requirements.lock \
    && pip wheel --no-deps --wheel-dir /wheels --requirement /wheels/requirements.lock
COPY pyproject.toml README.md ./
COPY newsflow newsflow
COPY connectors connectors
COPY pipeline pipeline
RUN pip wheel --no-deps --wheel-dir /wheels .

# -- runtime: no compilers, no build cache, no wheels left behind -------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="newsflow" \
      org.opencontainers.image.description="Streaming news ingestion: connectors -> Kafka -> Apache Beam enrichment -> Elasticsearch" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

# Apertium (offline translation) and its language pairs, tcmalloc for its programs, and the Hunspell dictionaries of the
# index's language analyzers (deploy/elasticsearch/hunspell-dictionaries.txt; an init container
# of this image hands them to the Elasticsearch node), at the versions bookworm ships.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       apertium=3.8.3-1+b2 \
       apertium-eng-spa=0.8.1-2 \
       apertium-es-pt=1.1.6-1 \
       apertium-fr-es=0.9.4-1 \
       libtcmalloc-minimal4=2.10-1 \
       hunspell-en-us=1:2020.12.07-2 \
       hunspell-es=1:7.5.0-1 \
       hunspell-pt-pt=1:7.5.0-1 \
       hunspell-fr=1:7.0-1 \
       hunspell-fr-classical=1:7.0-1 \
       hunspell-de-de=20161207-11 \
       hunspell-it=1:7.5.0-1 \
       hunspell-nl=2:2.20.19-2 \
       hunspell-ru=1:7.5.0-1 \
       hunspell-pl=1:7.5.0-1 \
       hunspell-uk=1:7.5.0-1 \
    && rm -rf /var/lib/apt/lists/*

# Only the wheels from the builder: pip may not reach an index, so a package missing from the
# lock fails the build instead of arriving unpinned.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels \
        --requirement /wheels/requirements.lock /wheels/newsflow-*.whl \
    && pip check

# hunspell.sh and its list, for the Elasticsearch node's init container (compose, Kubernetes).
COPY deploy/elasticsearch/ /opt/newsflow/elasticsearch/

# A fixed numeric uid, so Kubernetes' runAsNonRoot can verify it without /etc/passwd lookups.
RUN groupadd --system --gid 10001 newsflow \
    && useradd --system --uid 10001 --gid newsflow --home-dir /var/lib/newsflow \
       --create-home --shell /usr/sbin/nologin newsflow
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NEWSFLOW_STACK__STATE_DIR=/var/lib/newsflow \
    HEALTHCHECK_URL=http://127.0.0.1:8000/health
WORKDIR /var/lib/newsflow
USER 10001:10001
EXPOSE 8000 9464 9465

# One probe for every role: each command serves HTTP health on its own port, so the role sets
# HEALTHCHECK_URL (serve :8000/health, pipeline :9465/healthz, connectors :9464/metrics).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['HEALTHCHECK_URL'], timeout=4)"]

ENTRYPOINT ["newsflow"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
