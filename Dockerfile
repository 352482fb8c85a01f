# The explorer server: graphviz lays graphs out, bubblewrap jails the programs, a non-root user.
# CPU torch by default. For NVIDIA GPUs, build from a CUDA runtime image with a CUDA wheel index:
#   docker build -t autograd-explorer:cuda \
#     --build-arg BASE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 \
#     --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

# A CUDA base image has no Python of its own: install Debian/Ubuntu's when it is missing.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        graphviz librsvg2-bin bubblewrap libseccomp2 fonts-dejavu-core fonts-wqy-microhei \
    && if ! python3 -m venv --help >/dev/null 2>&1; then \
        apt-get install -y --no-install-recommends python3 python3-venv; \
    fi \
    && rm -rf /var/lib/apt/lists/*

RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# torch first, from the chosen index: the default index would pull several GB of CUDA libraries.
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"

WORKDIR /srv/autograd-explorer
COPY pyproject.toml README.md ./
COPY app ./app
COPY static ./static
COPY templates ./templates
RUN pip install --no-cache-dir .

RUN useradd --create-home --uid 10001 explorer
USER explorer

# Limits, as in the README's Settings; change them with `docker run -e AE_...`. AE_WORKERS is
# left to its default (twice the cores), which counts the host's cores, not a --cpus quota.
ENV AE_QUEUE_SIZE=8 \
    AE_WALL_SECONDS=30 \
    AE_CPU_SECONDS=30 \
    AE_IDLE_AFTER_CPU_SECONDS=0.5 \
    AE_MEMORY_MARGIN_MB=1536 \
    AE_MAX_NODES=20000 \
    AE_MAX_CODE_BYTES=20000 \
    AE_RATE_LIMIT_PER_MINUTE=60 \
    AE_CACHE_ENTRIES=256 \
    AE_CACHE_MB=64 \
    AE_MAX_RESPONSE_BYTES=16777216 \
    AE_LAYOUT_SECONDS=20 \
    AE_LAYOUT_MEMORY_MB=1024 \
    AE_LAYOUT_MAX_EDGES=20000 \
    AE_MAX_CONNECTIONS=1000 \
    AE_HEADER_TIMEOUT_SECONDS=5 \
    AE_TRUSTED_PROXIES="" \
    AE_CORS_ORIGINS=""

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health', timeout=4)"
CMD ["autograd-explorer", "serve", "--host", "0.0.0.0", "--port", "8000"]
