#!/usr/bin/env bash
# GPU checks for the model core, run on a lent device machine (see README "Benchmarks").
#
# Usage: bash bench/device_checks.sh [--dry-run]
#
# Expects the transformers wheel in .whl/ and the parity fixtures in .devcarry/parity
# (or LLAVA_ST_PARITY_DIR set). Every check runs even when an earlier one fails; the
# script exits non-zero when any of them failed, and a summary at the end names them.
# The whole output is kept in bench/results/device_checks.log (and copied to $OUT with
# the CUDA results when $OUT is set). --dry-run prints the steps and checks the
# script's inputs without running anything on a GPU.
set -euo pipefail

SCRIPT="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$SCRIPT")/.."
RESULTS=bench/results
LOG=$RESULTS/device_checks.log
DRY_RUN=0
case "${1:-}" in
  --dry-run) DRY_RUN=1; LOG=${TMPDIR:-/tmp}/device_checks.dry-run.log ;;  # keep the real log
  "") ;;
  *) echo "usage: $0 [--dry-run]" >&2; exit 2 ;;
esac

FAILED=()

# run_step NAME COMMAND...: run one check, record a failure instead of stopping.
run_step() {
  local name=$1 rc=0
  shift
  echo
  echo "== $name"
  if [[ $DRY_RUN == 1 ]]; then
    echo "(dry run) would run: $*"
    return 0
  fi
  local start=$SECONDS
  "$@" || rc=$?
  if [[ $rc == 0 ]]; then
    echo "-- ok: $name ($((SECONDS - start)) s)"
  else
    echo "-- FAILED: $name (exit $rc, $((SECONDS - start)) s)"
    FAILED+=("$name")
  fi
}

# check_result FILE KEY BOUND: the result FILE was written by this run and its KEY is <= BOUND.
check_result() {
  python3 - "$1" "$2" "$3" "$STARTED" <<'PY'
import json, os, sys
path, key, bound, started = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
if not os.path.isfile(path) or os.path.getmtime(path) < started:
    sys.exit(f"{path} was not written by this run")
value = json.load(open(path))[key]
print(f"{path}: {key} = {value:.4f} (bound <= {bound})")
sys.exit(0 if value <= bound else f"{key} {value:.4f} is over the bound {bound}")
PY
}

# check_min FILE KEY BOUND: the result FILE was written by this run and its KEY is >= BOUND.
check_min() {
  python3 - "$1" "$2" "$3" "$STARTED" <<'PY'
import json, os, sys
path, key, bound, started = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
if not os.path.isfile(path) or os.path.getmtime(path) < started:
    sys.exit(f"{path} was not written by this run")
value = json.load(open(path))[key]
print(f"{path}: {key} = {value:.4f} (bound >= {bound})")
sys.exit(0 if value >= bound else f"{key} {value:.4f} is under the bound {bound}")
PY
}

dtype_check() {
  python3 - <<'PY'
"""Greedy generation on the parity image case in every dtype and attention kernel.

Checks what the README states: the greedy ids equal the reference in float32, bfloat16
and float16 with both kernels, and float32 scores are within the fixture bound (atol
1e-4). The half-precision score differences are printed, not bounded."""
import json, os, sys
from pathlib import Path

import numpy as np
import torch

from llava_st.model import LlavaSTModel

root = Path(os.environ["LLAVA_ST_PARITY_DIR"])
ref = np.load(root / "image_rec" / "reference.npz")
with np.load(root / "media" / "image_pixel_values.npz") as z:
    pix = torch.from_numpy(z[z.files[0]])
ids = torch.from_numpy(ref["input_ids"])[None]
failures = []
for dtype in ("float32", "bfloat16", "float16"):
    for attn in ("sdpa", "eager"):
        m = LlavaSTModel.from_pretrained(root / "model", device="cuda", dtype=dtype, attn_implementation=attn)
        out = m.generate(ids, pixel_values=[pix], modalities=["image"], max_new_tokens=len(ref["gen_ids"]), return_scores=True)
        diff = (out.scores[0].float().cpu() - torch.from_numpy(ref["gen_scores"])).abs().max().item()
        same = out.sequences[0].cpu().tolist() == ref["gen_ids"].tolist()
        ok = same and np.isfinite(diff) and (dtype != "float32" or diff <= 1e-4)
        print(f"{dtype:9s} {attn:5s} greedy ids equal reference: {same}; max |score diff| {diff:.2e} {'ok' if ok else 'FAIL'}")
        if not ok:
            failures.append(f"{dtype}/{attn}")
        del m
        torch.cuda.empty_cache()
sys.exit(f"failed: {', '.join(failures)}" if failures else 0)
PY
}

main() {
  set -euo pipefail  # main runs in the pipeline's subshell: set again, not inherited from the caller's +e
  STARTED=$(date +%s)
  echo "device checks, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [[ $DRY_RUN == 1 ]]; then
    bash -n "$SCRIPT"
    for f in bench/model_decode.py bench/coord_loss_memory.py tests/test_parity.py tests/model/test_static_decode.py; do
      [[ -f $f ]] || { echo "missing $f"; exit 1; }
    done
  else
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD/src:$PWD/bench
    export LLAVA_ST_PARITY_DIR=${LLAVA_ST_PARITY_DIR:-$PWD/.devcarry/parity}
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__); assert torch.cuda.is_available(), 'no CUDA device'"
  fi
  export PYTHONUNBUFFERED=1

  # CI=true: missing parity fixtures are a failure, not a skip
  run_step "parity on cuda (float32, TF32 off)" \
    env CI=true LLAVA_ST_TEST_DEVICE=cuda python3 -m pytest tests/test_parity.py -q -rs -p no:cacheprovider
  run_step "dtypes and attention on cuda" dtype_check
  # static cache + compiled step (CUDA graphs): greedy ids and logits equal the eager path, compile once per bucket
  run_step "static and compiled decoding equal eager on cuda" \
    env LLAVA_ST_TEST_DEVICE=cuda python3 -m pytest tests/model/test_static_decode.py -q -rs -p no:cacheprovider
  # one run, same weights: eager step, static and compiled steps, bare Qwen2 step; tokens/s at batch 1 and 8;
  # the visual prefill of 100 frames (one batched bf16 pass, SDPA) and the text prefill of 2048 tokens
  run_step "decode, 7B shapes, bf16: eager, static, compiled (CUDA graphs), bare Qwen2" \
    python3 bench/model_decode.py --preset 7b --device cuda --dtype bfloat16 --context 2048 --steps 40 \
      --rounds 3 --new-tokens 64 --frames 100
  run_step "decode step ratio <= 1.10" check_result $RESULTS/model_decode_7b_cuda.json decode_step_ratio 1.10
  run_step "compiled / eager tokens/s at batch 1 >= 2" check_min $RESULTS/model_decode_7b_cuda.json compiled_speedup 2
  run_step "coordinate loss memory on cuda" python3 bench/coord_loss_memory.py --device cuda
  run_step "coordinate loss memory ratio <= 1.05" check_result $RESULTS/coord_loss_memory_cuda.json peak_memory_ratio 1.05

  echo
  if ((${#FAILED[@]})); then
    echo "== ${#FAILED[@]} check(s) FAILED:"
    printf '   - %s\n' "${FAILED[@]}"
    return 1
  fi
  if [[ $DRY_RUN == 1 ]]; then
    echo "== dry run: the steps above were listed, nothing was run"
  else
    echo "== all checks passed"
  fi
}

mkdir -p "$RESULTS"
STAMP=$(mktemp)  # results newer than this were written by this run
# Not `main | tee || ...`: -e would be ignored inside main. With pipefail the pipeline's
# status is main's (tee succeeds); +e only here, so that the log is still copied.
set +e
main 2>&1 | tee "$LOG"
status=$?
set -e
if [[ -n ${OUT:-} && $DRY_RUN == 0 ]]; then
  mkdir -p "$OUT"
  cp "$LOG" "$OUT"/
  find "$RESULTS" -maxdepth 1 -name '*cuda*.json' -newer "$STAMP" -exec cp {} "$OUT"/ \;
fi
rm -f "$STAMP"
exit $status
