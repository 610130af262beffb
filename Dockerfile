# One image for every evop process (api, coordinator, worker); docker-compose.yml picks the command.
# CPU inference by default. For CUDA workers see docker/worker-gpu.Dockerfile.
FROM node:20-bookworm-slim
WORKDIR /evop
ENV NODE_ENV=production \
    ONNXRUNTIME_NODE_INSTALL=skip \
    TURBO_TELEMETRY_DISABLED=1 \
    EVOP_ARTIFACT_DIR=/data/artifacts
COPY . .
RUN npm ci --no-audit --no-fund && npm cache clean --force
EXPOSE 3000
CMD ["node", "--import", "tsx", "apps/api/src/main.ts"]
