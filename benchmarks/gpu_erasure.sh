#!/usr/bin/env bash
# ML-1M "Horror" erasure on one GPU, as one prepared command (issue 26): fits in 8 minutes on one H200.
#
#   parent    `tracer train` of the ml-1m-deep preset (cf SIDs) on $DEVICE
#   retrain   `tracer erase --method retrain` (the gold standard: the same training on the retain set)
#   tracer    TRACER at the ML-1M Horror selection (retain_kl 300, 240 steps, no dropout,
#             kl_without_concept, lambda2 0; docs/benchmarks/erasure.md,
#             "ML-1M Horror on three fresh parents")
#   npo       the best baseline: NPO tuned on validation (beta 0.5, lr 3e-4, 200 steps)
#   eval-*    `tracer evaluate --concept Horror` of each erased model (retain/forget/exposure, mass)
#   attack-*  the relearning attack on each (64 forget examples, 50 steps; tiny: 16, 10)
#
# Every stage runs under its own time limit, cut to what is left of $BUDGET seconds; a stage whose input
# is missing is skipped. Whatever happens, $OUT gets gpu_erasure.log and summary.json (stage status and
# seconds, parent throughput and test metrics, each method's seconds, steps/s, cost against Retrain,
# headline metrics and attack): 2 files. Models and metric files stay in $WORK. Exit status 1 when a
# stage failed, timed out or was skipped.
#
# SIZE=ml-1m needs runs/ml-1m/{data,sids-cf} (with the `device` tool: carry them). SIZE=tiny builds a
# small synthetic world (`tracer prepare --dataset synthetic`) and trains the `tiny` preset: with
# DEVICE=cpu it is the CPU dry run of the same script (under 3 minutes; tests/test_gpu_erasure.py).
# Uses $PYTHON (default python3) with src/ on PYTHONPATH; nothing is installed.
#
#   bash benchmarks/gpu_erasure.sh                   # on the GPU machine
#   DEVICE=cpu SIZE=tiny OUT=/tmp/dry bash benchmarks/gpu_erasure.sh
set -uo pipefail

OUT=${OUT:-gpu-erasure-out}
DEVICE=${DEVICE:-cuda}
SIZE=${SIZE:-ml-1m}
PYTHON=${PYTHON:-python3}
WORK=${WORK:-runs/gpu-erasure/$SIZE-$DEVICE}
CONCEPT=Horror
SLACK=${SLACK:-1}  # multiplies every stage limit (a loaded machine); $BUDGET still caps the whole run
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TQDM_DISABLE=1
tracer() { "$PYTHON" -m tracer.cli "$@"; }

if [[ $SIZE == ml-1m ]]; then
    DATA=runs/ml-1m/data SIDS=runs/ml-1m/sids-cf PRESET=ml-1m-deep
    BUDGET=${BUDGET:-460} TRACER_STEPS=240 NPO_STEPS=200 EVAL_ARGS=(--mass-users 200)
    ATTACK_ARGS=(--examples 64 --steps 50)
    declare -A LIMIT=([parent]=150 [retrain]=190 [tracer]=60 [npo]=45 [eval]=40 [attack]=40)
elif [[ $SIZE == tiny ]]; then
    DATA=$WORK/data SIDS=$WORK/sids PRESET=tiny
    BUDGET=${BUDGET:-170} TRACER_STEPS=20 NPO_STEPS=20 EVAL_ARGS=(--mass-users 50)
    ATTACK_ARGS=(--examples 16 --steps 10)
    declare -A LIMIT=([parent]=40 [retrain]=40 [tracer]=25 [npo]=20 [eval]=25 [attack]=25)
else
    echo "error: SIZE must be ml-1m or tiny, got '$SIZE'" >&2
    exit 2
fi
if [[ $DEVICE == cuda* ]] && ! "$PYTHON" -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
    echo "error: $PYTHON sees no CUDA device: run this on a GPU machine (or set DEVICE=cpu)" >&2
    exit 2
fi
mkdir -p "$OUT" "$WORK"
rm -rf "$WORK"/{parent,retrain,tracer,npo} "$WORK"/eval-*.json "$WORK"/attack-*.json "$WORK"/*.out
LOG="$OUT/gpu_erasure.log"
STAGES="$WORK/stages.tsv"
: > "$LOG"
: > "$STAGES"
START=$SECONDS
summary() { "$PYTHON" benchmarks/gpu_erasure_summary.py "$WORK" "$STAGES" "$OUT/summary.json"; }
trap summary EXIT
say() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$LOG"; }

# run NAME LIMIT_KEY NEEDED_PATH tracer-args...: one stage under min(its limit, the budget left).
run() {
    local name=$1 limit=$((LIMIT[$2] * SLACK)) needed=$3
    shift 3
    local left=$((BUDGET - (SECONDS - START)))
    ((limit > left)) && limit=$left
    if [[ ! -e $needed ]] || ((limit < 5)); then
        say "$name skipped (${needed} missing or ${left}s of the budget left)"
        printf '%s\tskipped\t0\t%s\n' "$name" "$limit" >> "$STAGES"
        return
    fi
    say "$name (limit ${limit}s)"
    local began=$SECONDS
    timeout -k 5 "$limit" "$PYTHON" -m tracer.cli "$@" >> "$WORK/$name.out" 2>&1
    local code=$?
    tail -n 3 "$WORK/$name.out" | tr '\r' '\n' | tail -n 3 >> "$LOG"
    printf '%s\t%s\t%s\t%s\n' "$name" "$code" "$((SECONDS - began))" "$limit" >> "$STAGES"
}

say "SIZE=$SIZE DEVICE=$DEVICE WORK=$WORK budget ${BUDGET}s"
if [[ $SIZE == tiny ]]; then
    tracer prepare --dataset synthetic --users 150 --items 300 --interactions 3000 --concepts 4 \
        --seed 0 --out "$DATA" --overwrite >> "$LOG" 2>&1
    tracer sids "$DATA" --encoder cf --out "$SIDS" --overwrite > /dev/null 2>> "$LOG"
fi
for needed in "$DATA" "$SIDS"; do
    [[ -d $needed ]] || say "$needed is missing: prepare it (tracer prepare / tracer sids) or carry it"
done

P=$WORK/parent
run parent parent "$SIDS" train "$DATA" "$SIDS" --preset "$PRESET" --device "$DEVICE" --out "$P" --overwrite
erase=(erase "$P" --data "$DATA" --concept "$CONCEPT" --device "$DEVICE" --overwrite)
run retrain retrain "$P/metrics.json" "${erase[@]}" --method retrain --out "$WORK/retrain"
run tracer tracer "$P/metrics.json" "${erase[@]}" --method tracer-anchored --out "$WORK/tracer" --set retain_kl=300 \
    --set steps="$TRACER_STEPS" --set dropout=false --set kl_without_concept=true --set lambda2=0
run npo npo "$P/metrics.json" "${erase[@]}" --method npo --out "$WORK/npo" --set beta=0.5 --set lr=3e-4 \
    --set steps="$NPO_STEPS"
for method in tracer npo retrain; do
    run "eval-$method" eval "$WORK/$method/manifest.json" evaluate "$WORK/$method" --data "$DATA" \
        --concept "$CONCEPT" --device "$DEVICE" "${EVAL_ARGS[@]}" --out "$WORK/eval-$method.json"
done
for method in tracer npo retrain; do
    run "attack-$method" attack "$WORK/$method/manifest.json" attack "$WORK/$method" --data "$DATA" \
        --concept "$CONCEPT" --device "$DEVICE" --attacks relearning "${ATTACK_ARGS[@]}" \
        --out "$WORK/attack-$method.json"
done
say "done in $((SECONDS - START))s: $OUT/summary.json"
# exit 1 when a stage failed, timed out or was skipped (the summary is written either way)
! cut -f2 "$STAGES" | grep -qv '^0$'
