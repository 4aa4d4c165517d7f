#!/usr/bin/env bash
# The GPU checks in one go, about 9 minutes on a bare CUDA machine with no network:
#   1. tests-nn     the engine's tests on the GPU        python -m pytest tests/nn -x -q
#   2. book         the book's net, P = 256..8192, against the per-model loop (population.py)
#   3. realistic    the realistic pool, P = 256..8192, against the per-model loop
#   4. own-cnn      a user's own small CNN (caviar.own), P = 256, against the per-model loop
#                   (own_model.py; goal: >= 20x)
#   5. budget       search in 60 s a side: caviar with halving against the loop (budget.py)
# then one table (gpu_table.py): ms per model-epoch, the loop in the same run, speed-up, peak
# GPU memory, and the budget's figures. Each step has its own time limit; a failing step does
# not stop the others; the exit status is the number of failed steps.
#
#   bash benchmarks/gpu.sh            # on the GPU machine; refuses to run unless torch sees CUDA
#   bash benchmarks/gpu.sh --check    # every step, tiny sizes, on this CPU: the script is sound
#   bash benchmarks/gpu.sh --prepare  # only fill gpu-data/ (below), here, before a device run
#
# Data: MNIST's IDX files in gpu-data/mnist, a folder of this checkout that git ignores. The
# script fills it from ../shared/datasets/mnist when that exists (here); a device run carries it
# (device.run carry=["gpu-data"]), since ../shared does not travel. Without it the population
# steps use synthetic data and the budget step is skipped, saying so.
# Nothing is installed: the checkout's src/ goes first on PYTHONPATH over the machine's own
# PyTorch, NumPy, scikit-learn and matplotlib. Results go to ${OUT:-gpu-results}/: each step's
# log, its JSON, summary.txt, nvidia-smi before and after.

set -u
MODE=${1:-run}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA="$ROOT/gpu-data/mnist"
SHARED="$ROOT/../shared/datasets/mnist"
if [[ ! -d $DATA && -d $SHARED ]]; then
    mkdir -p "$DATA" && cp "$SHARED"/*.gz "$DATA"/ || exit 1
fi
case $MODE in
--prepare)
    if [[ -d $DATA ]]; then echo "gpu-data/mnist ready: $(ls "$DATA" | wc -l) files"; exit 0; fi
    echo "no $SHARED to fill gpu-data/mnist from" >&2
    exit 1
    ;;
run | --check) ;;
*)
    echo "usage: bash benchmarks/gpu.sh [--check | --prepare]" >&2
    exit 2
    ;;
esac

OUT=${OUT:-gpu-results}
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
cd "$ROOT" || exit 1
export PYTHONUNBUFFERED=1
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }

if ! "$PY" -c "import caviar, torch, pytest" >"$OUT/import-check.log" 2>&1; then
    note "caviar, torch or pytest does not import with $PY (nothing is installed here):"
    tail -n 3 "$OUT/import-check.log" | tee -a "$SUMMARY"
    exit 1
fi
if [[ $MODE == run ]] && ! "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    note "torch $("$PY" -c 'import torch; print(torch.__version__)') sees no CUDA device:" \
        "this script measures the GPU path (bash benchmarks/gpu.sh --check runs it on the CPU)"
    exit 3
fi

START=$(date +%s)
DEADLINE=$((START + 560)) # 9.5 minutes less a margin for the table and nvidia-smi
failures=0

# step NAME CAP_SECONDS COMMAND...: run with a time limit (its cap, or what is left of the 8
# minutes), its output in OUT/NAME.log; one line in the summary.
step() {
    local name=$1 cap=$2
    shift 2
    local left=$((DEADLINE - $(date +%s)))
    local limit=$((cap < left ? cap : left))
    if ((left < 20)); then
        note "$(printf '%-10s skipped: %s s left of the 9.5 minutes' "$name" "$left")"
        failures=$((failures + 1))
        return
    fi
    local t0=$EPOCHREALTIME rc
    timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    local took
    took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    local what="ok"
    if ((rc == 124 || rc == 137)); then what="TIMED OUT"; elif ((rc != 0)); then what="FAILED"; fi
    note "$(printf '%-10s %-9s rc=%-3s %6s s (limit %s s)' "$name" "$what" "$rc" "$took" "$limit")"
    if ((rc != 0)); then
        failures=$((failures + 1))
        tail -n 25 "$OUT/$name.log" | sed "s/^/    $name| /"
    fi
}

note "gpu.sh $MODE in $ROOT, $(date -u +%Y-%m-%dT%H:%M:%SZ), results in $OUT"
note "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    "($(git -C "$ROOT" status --short 2>/dev/null | wc -l) changed files)"
"$PY" -c "import platform, torch; d = torch.cuda.get_device_name(0) if torch.cuda.is_available() \
else 'no CUDA device'; print(f'python {platform.python_version()}, torch {torch.__version__}, {d}')" |
    tee -a "$SUMMARY"
command -v nvidia-smi >/dev/null && nvidia-smi >"$OUT/nvidia-smi-before.txt" 2>&1

data=()
own_data=()
[[ -d $DATA ]] && data=(--data "$DATA") && own_data=(--data-dir "$DATA")
if [[ $MODE == --check ]]; then
    sizes=2,4
    pop=(--device cpu --examples 400 --baseline-models 1 --repeats 1)
    tests=(-k "vectorized or slots")
    budget=(--device cpu --seconds 1 --train-size 1200 --test-size 300)
    own=(--device cpu --check)
else
    sizes=256,1024,4096,8192
    pop=(--repeats 1)
    tests=()
    budget=(--seconds 60)
    own=(--device cuda --sizes 256 --examples 12000)
fi

step tests-nn 90 "$PY" -m pytest tests/nn -x -q -p no:cacheprovider "${tests[@]}"
step book 130 "$PY" benchmarks/population.py --workload book --sizes "$sizes" "${pop[@]}" \
    "${data[@]}" --json "$OUT/book.json"
step realistic 130 "$PY" benchmarks/population.py --workload realistic --sizes "$sizes" \
    "${pop[@]}" "${data[@]}" --json "$OUT/realistic.json"
step own-cnn 100 "$PY" benchmarks/own_model.py --workload cnn "${own[@]}" "${own_data[@]}" \
    --json "$OUT/own-cnn.json"
if [[ -d $DATA ]]; then
    step budget 170 "$PY" benchmarks/budget.py --data-dir "$DATA" --skip-optuna --skip-flat \
        "${budget[@]}" --out "$OUT"
else
    note "budget     skipped: no MNIST in gpu-data/mnist (bash benchmarks/gpu.sh --prepare)"
fi

command -v nvidia-smi >/dev/null && nvidia-smi >"$OUT/nvidia-smi-after.txt" 2>&1
"$PY" benchmarks/gpu_table.py "$OUT" | tee -a "$SUMMARY"
note "total $(($(date +%s) - START)) s, $failures failed step(s)"
exit "$failures"
