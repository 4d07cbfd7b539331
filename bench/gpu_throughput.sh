#!/usr/bin/env bash
# The training-throughput benchmark on a CUDA GPU: the bundled model's shape and Llama-3.2-1B's
# shape, both randomly initialised (throughput does not depend on the weights' values).
#   bench/gpu_throughput.sh OUT_DIR [TOKENIZER_DIR]
# TOKENIZER_DIR: a copy of the bundled model's tokenizer where the bundled model is not installed.
set -uo pipefail
out=${1:?usage: bench/gpu_throughput.sh OUT_DIR [TOKENIZER_DIR]}
tokenizer=${2:-}
here=$(dirname "$0")
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
variants=ours:bf16,ours:bf16:padded,trl:default,trl:bf16

measure() {  # NAME ARGS...: one benchmark run, its log and JSON kept under OUT_DIR
    local name=$1; shift
    # Each variant runs in a process of its own (CUDA starts each time): minutes, not seconds.
    timeout 1800 python3 "$here/train_throughput.py" --device cuda ${tokenizer:+--tokenizer "$tokenizer"} \
        --variants "$variants" --steps 10 --warmup 3 --out "$out/$name.json" "$@" 2>&1 \
        | grep --line-buffered -v -i warn | tee "$out/$name.log"
}

measure smollm2-135m-b8 --model random:smollm2-135m --batch-size 8
measure smollm2-135m-b64x4 --model random:smollm2-135m --batch-size 64 --turns 4
measure llama-3.2-1b-b32x4 --model random:llama-3.2-1b --batch-size 32 --turns 4
