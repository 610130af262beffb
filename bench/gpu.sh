#!/usr/bin/env bash
# The evaluator benchmark on a GPU machine (for the device tool): says whether onnxruntime's CUDA provider
# loaded, then runs bench/evaluator with EVOP_PROVIDER=cuda (CPU if CUDA does not load, so the figures still come).
# Writes bench/results/gpu.json and, when run with $OUT set (the device tool), copies the results there.
# onnxruntime-node's CUDA libraries come with `ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci` (needs the internet).
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "gpu: nvidia-smi not found"
probe=$(node --import tsx --input-type=module -e "
  const ort = await import('onnxruntime-node');
  const { resolveDataFile } = await import('@evop/config');
  const { llama2cToOnnx, readLlama2cCheckpoint, writeModel } = await import('@evop/onnx');
  const path = '/tmp/evop-gpu-probe.onnx';
  writeModel(llama2cToOnnx(readLlama2cCheckpoint(resolveDataFile('stories260K/stories260K.bin'))), path);
  try { await ort.InferenceSession.create(path, { executionProviders: ['cuda'], logSeverityLevel: 3 }); console.log('cuda'); }
  catch (e) { console.log('cpu: ' + String(e.message).split('\n')[0]); }
" 2>&1 | tail -1)
echo "onnxruntime CUDA provider: ${probe}"
provider=cpu; [ "$probe" = cuda ] && provider=cuda
EVOP_PROVIDER=$provider npm run -s bench:evaluator
node -e "
  const fs = require('fs');
  const r = JSON.parse(fs.readFileSync('bench/results/evaluator.json', 'utf8'));
  fs.writeFileSync('bench/results/gpu.json', JSON.stringify({ cudaProbe: process.argv[1], ...r }, null, 2) + '\n');
" "$probe"
if [ -n "${OUT:-}" ]; then cp bench/results/gpu.json bench/results/evaluator.json "$OUT/"; fi
