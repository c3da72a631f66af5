#!/usr/bin/env bash
# The GPU checks of the generative recommender, as one prepared command for a CUDA machine.
#
#   tests     tests/test_cuda.py: bf16 autocast in the training loss, a fast-path step makes no host-device
#             sync and the fast path gives the default losses, CUDA training lowers the loss and saves
#             float32 weights, GPU beam search = GPU exact scorer = CPU exact scorer, SASRec on CUDA
#   flops     training throughput as model FLOP/s next to bf16 matmul FLOP/s (benchmarks/train_flops.py),
#             steps/s and targets/s of the default path, then of the fast path (fused_loss + compile)
#   decoding  beam-search users/s on the GPU against the per-beam loop (benchmarks/decoding_speed.py)
#   train     `tracer train` of ML-1M with $PRESET on the GPU, stopped after $TRAIN_SECONDS; it saves its
#             state every epoch, so a second call with the same $RUN continues it (--resume)
#
# Needs the prepared ML-1M data and its collaborative SIDs in runs/ml-1m/{data,sids-cf} (with the
# `device` tool: carry ["runs/ml-1m/data", "runs/ml-1m/sids-cf"], and for a resumed train also $RUN).
# Uses the machine's own python3 (torch, pandas, pyarrow, safetensors, typer, tqdm, pyyaml, pytest) with
# src/ on PYTHONPATH; nothing is installed. Results go to $OUT (default device-out/), at most 6 files.
#
#   STAGES="tests flops decoding train" PRESET=ml-1m-deep EPOCHS=20 TRAIN_SECONDS=240 \
#       bash benchmarks/device_check.sh
set -uo pipefail

OUT=${OUT:-device-out}
STAGES=${STAGES:-tests flops decoding train}
PRESET=${PRESET:-ml-1m-deep}
EPOCHS=${EPOCHS:-}  # e.g. 20: passed to tracer train as --max-epochs
TRAIN_SECONDS=${TRAIN_SECONDS:-240}
FLOPS_STEPS=${FLOPS_STEPS:-200}  # timed steps of each flops run (the first, compiling, step is not timed)
RUN=${RUN:-runs/ml-1m/gpu-$(basename "$PRESET" .yaml)${EPOCHS:+-e$EPOCHS}}
DATA=${DATA:-runs/ml-1m/data}
SIDS=${SIDS:-runs/ml-1m/sids-cf}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}  # DEVICE=cpu dry-runs the flops, decoding and train stages on a CPU machine, e.g.
# DEVICE=cpu STAGES=flops PRESET=ml-100k FLOPS_STEPS=20 DATA=runs/ml-100k/data SIDS=runs/ml-100k/sids
export PYTHONPATH="$PWD/src:$PWD/tests${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT"
LOG="$OUT/device_check.log"

say() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$LOG"; }
stage() { [[ " $STAGES " == *" $1 "* ]]; }

for needed in "$DATA" "$SIDS"; do
    if [[ ! -d $needed ]]; then
        echo "error: $needed is missing: run tracer prepare/sids for ml-1m first, or carry it" >&2
        exit 2
    fi
done
if [[ $DEVICE == cuda ]]; then
    if ! device=$($PYTHON -c 'import torch; print(torch.__version__, torch.cuda.get_device_name())' 2>/dev/null); then
        echo "error: $PYTHON sees no CUDA device: run this on a GPU machine (or set DEVICE=cpu)" >&2
        exit 2
    fi
    say "device: $device"
fi
status=0

if stage tests; then
    say "tests/test_cuda.py"
    $PYTHON -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -n 30 | tee -a "$LOG" || status=1
fi

if stage flops; then
    for path in default fast; do
        label="$(basename "$PRESET" .yaml)-$DEVICE" fast=()
        [[ $path == fast ]] && label+=-fast fast=(--fast-path)
        say "train_flops: $PRESET, $FLOPS_STEPS steps, $path path"
        $PYTHON benchmarks/train_flops.py --data "$DATA" --sids "$SIDS" --preset "$PRESET" \
            --steps-only causal --steps "$FLOPS_STEPS" --device "$DEVICE" --label "$label" \
            ${fast[@]+"${fast[@]}"} --out "$OUT/training_$label.json" 2>&1 | tail -n 4 | tee -a "$LOG" || status=1
    done
fi

if stage decoding; then
    say "decoding_speed on $DEVICE (random causal small, 3,883 items)"
    $PYTHON benchmarks/decoding_speed.py --device "$DEVICE" --users 2048 --batch-size 512 --exact-users 256 \
        --exact-batch-size 64 --out "$OUT/decoding_speed_$DEVICE.json" 2>&1 | tail -n 14 | tee -a "$LOG" || status=1
fi

if stage train; then
    options=()
    [[ -d $RUN/state ]] && options=(--resume)
    [[ -n $EPOCHS ]] && options+=(--max-epochs "$EPOCHS")
    say "train $PRESET on $DEVICE for at most ${TRAIN_SECONDS}s into $RUN ${options[*]}"
    timeout "$TRAIN_SECONDS" $PYTHON -m tracer.cli train "$DATA" "$SIDS" --preset "$PRESET" --device "$DEVICE" \
        --out "$RUN" "${options[@]}" > "$OUT/train_progress.txt" 2>&1
    code=$?
    grep -a -o "epoch [0-9]*: loss.\{0,100\}" "$OUT/train_progress.txt" | tee -a "$LOG"
    tail -c 2000 "$OUT/train_progress.txt" | tr '\r' '\n' | grep -v "it/s\|s/it" | tail -n 8 >> "$LOG"
    rm "$OUT/train_progress.txt"
    if [[ $code == 124 ]]; then
        say "train stopped after ${TRAIN_SECONDS}s; the same command continues it"
    elif [[ $code != 0 ]]; then
        status=1
    fi
    cp "$RUN"/train_log.json "$OUT/" 2>/dev/null
    cp "$RUN"/metrics.json "$OUT/" 2>/dev/null
fi
say "done (status $status)"
exit $status
