#!/usr/bin/env bash
# The one device call of a session that is lent a GPU (docs/gpu.md), in three timed stages:
#   1. bench/gpu_train.py: training-step speed per deformable-conv backend, picks the fastest;
#   2. eggnet-train of the full-width EggNet (config/train/eggnet_full_gpu.json) for a wall-clock
#      budget, evaluated on the fixed test set and exported as fp16 safetensors + card into $OUT;
#      it starts from models/eggnet_full.safetensors when that exists (init_from), so device
#      sessions add up (a fresh Adam each time: the 67 MB checkpoint cannot come back);
#   3. bench/gpu.py: inference latency of the paper model at 1024² per backend.
# Every stage has its own `timeout`, so a hang in one cannot eat the others' device time, and
# each writes into $OUT as it goes (a killed call still returns what was done).
#
# Device:  OUT=... bash bench/full_gpu_session.sh [TRAIN_BUDGET_S]      (needs CUDA)
#          CONFIG=config/train/base_deform_full_gpu.json ... trains another configuration
#          (exported as $OUT/<its name>.safetensors); SKIP_BENCH=1 runs stage 2 alone
# CPU:     SMOKE=1 OUT=/tmp/x bash bench/full_gpu_session.sh             (toy sizes, ~1 min;
#          test/test_bench_gpu.py runs it so the device command cannot fail on a typo)
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 TQDM_MININTERVAL=15
PY=${PYTHON:-python3}  # the device image's python3 holds torch; CPU: PYTHON=.venv/bin/python
OUT=${OUT:?set OUT to the folder that comes back}
TRAIN_BUDGET_S=${1:-280}
LOG=$OUT/logs.txt
CONFIG=${CONFIG:-config/train/eggnet_full_gpu.json}
NAME=$("$PY" -c "import json, sys; print(json.load(open(sys.argv[1]))['name'])" "$CONFIG") || exit 2
RUN_DIR=${RUN_DIR:-/tmp/run_$NAME}
t0=$(date +%s)
stamp() { echo "== $(($(date +%s) - t0)) s: $*" | tee -a "$LOG"; }

if [ "${SMOKE:-0}" = 1 ]; then
  STEP_ARGS=(--smoke)
  TRAIN_ARGS=(--set width=4 --set patch=32 --set batch_size=2 --set num_workers=1
              --set iterations=3 --set eval_pairs=2 --set eval_size=64 --set checkpoint_every=2
              --set init_from=none)  # the shipped full model does not fit width 4
  INFER_ARGS=(--smoke)
  TRAIN_BUDGET_S=${1:-60}
else
  STEP_ARGS=(--budget-s 70)
  TRAIN_ARGS=()
  INFER_ARGS=(--models paper --sizes 1024 --budget-s 110)
fi

stamp "start"
{ nvidia-smi || true; "$PY" -c "import sys, torch, torchvision, triton; print(sys.version.split()[0], \
torch.__version__, torchvision.__version__, triton.__version__)" || true; } >> "$LOG" 2>&1

if [ "${SKIP_BENCH:-0}" = 1 ]; then  # training only: pytorch was the fastest (docs/gpu.md)
  stamp "1/3 skipped (SKIP_BENCH=1)"
else
  stamp "1/3 training-step bench"
  timeout 100 "$PY" bench/gpu_train.py "${STEP_ARGS[@]}" --pick "$RUN_DIR.backend" \
    --out "$OUT/train_step.md" >> "$LOG" 2>&1
fi
BACKEND=$(cat "$RUN_DIR.backend" 2>/dev/null || echo pytorch)

stamp "2/3 training $NAME ($TRAIN_BUDGET_S s, deform backend $BACKEND)"
timeout $((TRAIN_BUDGET_S + 120)) "$PY" -m eggnet_ros.training.train \
  --config "$CONFIG" --set budget_s="$TRAIN_BUDGET_S" \
  --set deform_backend="$BACKEND" --set out_dir="$RUN_DIR" \
  --set export="$OUT/$NAME.safetensors" "${TRAIN_ARGS[@]}" >> "$LOG" 2>&1
echo "training exit status $?" >> "$LOG"
cp "$RUN_DIR/loss.csv" "$OUT/loss.csv" 2>/dev/null

if [ "${SKIP_BENCH:-0}" != 1 ]; then
  stamp "3/3 inference bench"
  timeout 130 "$PY" bench/gpu.py "${INFER_ARGS[@]}" --out "$OUT/gpu_bench.md" \
    --json "$OUT/gpu_bench.json" >> "$LOG" 2>&1
fi
stamp "done"
