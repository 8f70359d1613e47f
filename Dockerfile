# syntax=docker/dockerfile:1
# driftd: build a wheel, then install it with the CPU build of torch into a slim runtime.
#   docker build -t driftd .
#   docker run --rm -v $PWD/driftd.toml:/etc/driftd/driftd.toml driftd

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md requirements-runtime.lock ./
COPY driftd ./driftd
RUN pip install --require-hashes --no-deps -r requirements-runtime.lock \
        --extra-index-url https://download.pytorch.org/whl/cpu \
    && pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .

FROM python:3.11-slim AS runtime
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DRIFTD_CONFIG=/etc/driftd/driftd.toml
# Exact versions with hashes from the runtime lock (make lock); torch is its CPU build
# (2.13.0+cpu, from PyTorch's CPU index): the resolver can never pull a CUDA build.
COPY requirements-runtime.lock /tmp/requirements-runtime.lock
RUN pip install --require-hashes --no-deps -r /tmp/requirements-runtime.lock \
        --extra-index-url https://download.pytorch.org/whl/cpu \
    && rm /tmp/requirements-runtime.lock
COPY --from=build /wheels /wheels
RUN pip install --no-deps /wheels/*.whl && rm -rf /wheels && pip check
RUN useradd --system --uid 10001 --home-dir /var/lib/driftd --shell /usr/sbin/nologin driftd \
    && mkdir -p /var/lib/driftd /etc/driftd \
    && chown driftd:driftd /var/lib/driftd
USER driftd
WORKDIR /var/lib/driftd
# 9464: Prometheus metrics (driftd run); 8765: the registry API (driftd api serve).
EXPOSE 9464 8765
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=4 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/readyz', timeout=3)"]
ENTRYPOINT []
CMD ["driftd", "run", "--config", "/etc/driftd/driftd.toml"]
