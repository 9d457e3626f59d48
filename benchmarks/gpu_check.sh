#!/usr/bin/env bash
# The GPU-ready check, as one script (under 8 minutes): on a host with an NVIDIA GPU it writes the GPU variant of the
# Triton repository (backend "onnxruntime", KIND_GPU instances, preferred batches), runs bench_models and a short
# bench_batch, and samples the GPU's utilisation (nvidia-smi, every 500 ms) during the batch. Without a GPU it runs
# the same steps on the CPU, so the script itself is known to work before a device is lent.
#
#   bash benchmarks/gpu_check.sh            # after `make venv system-deps models`
#
# Everything it measures lands in $OUT (default var/bench/gpu-check): the repository it wrote, bench JSON,
# nvidia-smi samples, and summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-var/bench/gpu-check}
mkdir -p "$OUT"
PY=.venv/bin/python
IMGREC=.venv/bin/imgrec
BUDGET_S=${GPU_CHECK_BUDGET_S:-450}  # leave time under 8 minutes for start-up and the copy back
began=$(date +%s)
left() { echo $((BUDGET_S - ($(date +%s) - began))); }

if command -v nvidia-smi >/dev/null && nvidia-smi -L >"$OUT/gpus.txt" 2>&1; then
  device=gpu
  # ONNX Runtime in process (bench_models' in-process column) and in Triton's Python backend take the CUDA provider.
  export IMGREC_ORT_PROVIDERS='["CUDAExecutionProvider", "CPUExecutionProvider"]'
else
  device=cpu
  echo "no NVIDIA GPU here: the same steps on the CPU" >"$OUT/gpus.txt"
fi
echo "device: $device" | tee "$OUT/summary.txt"

# 1. The GPU repository, generated from the registry (never edited by hand). It needs Triton's onnxruntime
#    backend; the tritonserver of the pytriton wheel has only the Python backend, so the stack below serves the
#    Python-backend repository, whose ONNX Runtime session takes the CUDA provider from IMGREC_ORT_PROVIDERS.
$IMGREC models triton-repo --gpu "$OUT/triton-repository-gpu" >/dev/null
grep -h -E 'backend|kind|preferred' "$OUT"/triton-repository-gpu/*/config.pbtxt | sort | uniq -c | tee -a "$OUT/summary.txt"
tritonserver=$($PY -c 'from runners.stack.components.triton import pytriton_dist; print(pytriton_dist())')
if [ -d "$tritonserver/backends/onnxruntime" ]; then
  export IMGREC_STACK_TRITON_REPOSITORY="$PWD/$OUT/triton-repository-gpu"
  echo "Triton has the onnxruntime backend: the stack serves the GPU repository" | tee -a "$OUT/summary.txt"
fi

# 2. The models alone: raw ONNX Runtime, in process and through Triton, at batches 1, 8 and 32.
timeout "$(( $(left) / 2 ))" $PY -m benchmarks.bench_models --batches 1 8 32 >"$OUT/bench_models.log" 2>&1 \
  || echo "bench_models did not finish in its share of the budget (see bench_models.log)" | tee -a "$OUT/summary.txt"
cp var/bench/models.json "$OUT/" 2>/dev/null || true

# 3. The batch path, 1,000 unique images, with the GPU sampled while it runs.
if [ "$device" = gpu ]; then
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits -lms 500 \
    >"$OUT/nvidia-smi.csv" &
  sampler=$!
fi
timeout "$(( $(left) - 20 ))" $PY -m benchmarks.bench_batch --items 1000 --repeats 0 --runs 1 \
  >"$OUT/bench_batch.log" 2>&1 || echo "bench_batch did not finish in the budget (see bench_batch.log)" \
  | tee -a "$OUT/summary.txt"
[ "$device" = gpu ] && kill "$sampler" 2>/dev/null || true
cp var/bench/batch.json "$OUT/" 2>/dev/null || true
grep -E "unique|CPU|Triton busy|mean micro-batch|failed" "$OUT/bench_batch.log" | tee -a "$OUT/summary.txt" || true
if [ -s "$OUT/nvidia-smi.csv" ]; then
  awk -F', ' '{ n++; s += $2; if ($2 > 0) busy++ } END { printf "GPU utilisation during the batch: mean %.1f%%, ' \
'samples with work %d of %d\n", s / n, busy, n }' "$OUT/nvidia-smi.csv" | tee -a "$OUT/summary.txt"
fi
echo "took $(( $(date +%s) - began )) s" | tee -a "$OUT/summary.txt"
