# llmhost, CPU image: the engine (llama-server) is built at image build time from the pinned llama.cpp sources.
# A CUDA image: build with --build-arg BASE=nvidia/cuda:12.6.3-devel-ubuntu24.04 --build-arg CMAKE_ARGS=-DGGML_CUDA=on
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}
ARG CMAKE_ARGS=""
ENV CMAKE_ARGS=${CMAKE_ARGS} PIP_NO_CACHE_DIR=1
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        cmake build-essential curl python3 python3-pip python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/llmhost
COPY pyproject.toml README.md ./
COPY src ./src
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install . && /opt/venv/bin/llmhost setup
ENV PATH=/opt/venv/bin:$PATH
EXPOSE 11436
HEALTHCHECK --interval=15s --timeout=5s CMD curl -fsS http://localhost:11436/health || exit 1
CMD ["llmhost", "serve", "--host", "0.0.0.0", "--insecure"]
