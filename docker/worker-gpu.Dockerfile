# A worker with onnxruntime's CUDA provider. Build from the repository root:
#   docker build -f docker/worker-gpu.Dockerfile -t evop-worker-gpu .
# and run it with the GPU reserved (docker-compose.yml, profile "gpu"). onnxruntime-node downloads its CUDA 12
# libraries at install time (ONNXRUNTIME_NODE_INSTALL=cuda12), so the build needs the internet.
FROM nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
 && curl -fsSL https://deb.nodesource.com/setup_20.x | bash - \
 && apt-get install -y --no-install-recommends nodejs && rm -rf /var/lib/apt/lists/*
WORKDIR /evop
ENV NODE_ENV=production \
    ONNXRUNTIME_NODE_INSTALL=cuda12 \
    EVOP_PROVIDER=cuda \
    EVOP_ARTIFACT_DIR=/data/artifacts
COPY . .
# The repository's .npmrc skips onnxruntime's CUDA download (for machines without the internet); here we want it.
RUN sed -i '/onnxruntime-node-install/d' .npmrc && npm ci --no-audit --no-fund && npm cache clean --force
CMD ["node", "--import", "tsx", "apps/worker/src/main.ts"]
