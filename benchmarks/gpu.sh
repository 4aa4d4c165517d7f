#!/usr/bin/env bash
# The GPU checks in one go, at most 8 minutes on a CUDA machine:
#   1. the engine's tests           python -m pytest tests/nn -x -q    (they pick the device)
#   2. population against the loop python benchmarks/population.py --data DATA   (P up to 4096)
#   3. search in a budget           python benchmarks/budget.py --seconds 60 --skip-optuna
# Each step's log (and budget.md) goes to ${OUT:-gpu-results}/, with nvidia-smi before and after,
# the versions, and summary.txt (exit status and seconds per step). A failing step does not stop
# the others; the exit status is the number of failed steps.
#
#   bash benchmarks/gpu.sh [DATA_DIR]        # DATA_DIR: MNIST's IDX .gz files,
#                                            # default ../shared/datasets/mnist
# It runs this checkout's code: src/ goes first on PYTHONPATH, and if caviar or its dependencies
# do not import, a fresh venv (.venv-gpu, seeing the system's packages such as a CUDA torch)
# gets `pip install -e '.[test]'` first. PYTHON picks the interpreter (default python3).

set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${1:-$ROOT/../shared/datasets/mnist} # a relative DATA_DIR or OUT: from where it is run
OUT=${OUT:-gpu-results}
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
[[ -d $DATA ]] && DATA=$(cd "$DATA" && pwd)
cd "$ROOT" || exit 1
SUMMARY="$OUT/summary.txt"
START=$(date +%s)
DEADLINE=$((START + 470)) # 8 minutes less a margin for the closing nvidia-smi and summary
failures=0
export PYTHONUNBUFFERED=1
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}

note() { echo "$*" | tee -a "$SUMMARY"; }

# step NAME CAP_SECONDS COMMAND...: run with a time limit (its cap, or what is left of the 8
# minutes), its output in OUT/NAME.log; one line in the summary.
step() {
    local name=$1 cap=$2
    shift 2
    local left=$((DEADLINE - $(date +%s)))
    local limit=$((cap < left ? cap : left))
    if ((left < 20)); then
        note "$(printf '%-12s skipped: %s s left of the 8 minutes' "$name" "$left")"
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
    note "$(printf '%-12s %-9s rc=%-3s %7s s (limit %s s)  %s' "$name" "$what" "$rc" "$took" \
        "$limit" "$*")"
    if ((rc != 0)); then
        failures=$((failures + 1))
        tail -n 25 "$OUT/$name.log" | sed "s/^/    $name| /"
    fi
}

: >"$SUMMARY"
note "gpu.sh in $ROOT, $(date -u +%Y-%m-%dT%H:%M:%SZ), data $DATA, results $OUT"
note "commit: $(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)" \
    "($(git -C "$ROOT" status --short 2>/dev/null | wc -l) changed files)"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi >"$OUT/nvidia-smi-before.txt" 2>&1
    note "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
else
    note "nvidia-smi not found: no NVIDIA driver here; the steps run on what torch finds"
fi
[[ -d $DATA ]] || note "warning: data folder $DATA does not exist; the MNIST steps will fail"

# This checkout's caviar, importable with its dependencies; else a fresh venv with it installed.
if ! "$PY" -c "import caviar, pytest, torch" >"$OUT/import-check.log" 2>&1; then
    note "caviar does not import with $PY; installing this checkout into .venv-gpu"
    # shellcheck disable=SC2016 # $1 is expanded by the inner shell
    step setup 300 bash -c 'python3 -m venv --system-site-packages "$1/.venv-gpu" &&
        "$1/.venv-gpu/bin/pip" install -e "$1[test]"' setup "$ROOT"
    PY="$ROOT/.venv-gpu/bin/python"
fi
"$PY" - <<'EOF' 2>&1 | tee -a "$SUMMARY"
import platform, sys
try:
    import caviar, torch
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    print(f"python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda}),"
          f" {gpu}; caviar from {caviar.__file__}")
except Exception as e:  # the steps below will fail and say why
    print(f"cannot import caviar/torch with {sys.executable}: {e!r}")
EOF

step tests-nn 130 "$PY" -m pytest tests/nn -x -q
step population 90 "$PY" benchmarks/population.py --data "$DATA"
step budget 250 "$PY" benchmarks/budget.py --data-dir "$DATA" --seconds 60 --skip-optuna \
    --out "$OUT"

if command -v nvidia-smi >/dev/null; then
    nvidia-smi >"$OUT/nvidia-smi-after.txt" 2>&1
fi
note "total $(($(date +%s) - START)) s, $failures failed step(s)"
exit "$failures"
