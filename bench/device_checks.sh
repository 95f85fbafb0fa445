#!/usr/bin/env bash
# GPU checks for the model core, run on a lent device machine (see README "Benchmarks").
# Expects: the transformers wheel in .whl/ and the parity fixtures in .devcarry/parity.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src:$PWD/bench PYTHONUNBUFFERED=1 LLAVA_ST_PARITY_DIR=$PWD/.devcarry/parity
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
echo "== parity on cuda (float32, TF32 off)"
LLAVA_ST_TEST_DEVICE=cuda python3 -m pytest tests/test_parity.py -q -p no:cacheprovider 2>&1 | tail -4
echo "== dtypes and attention on cuda"
python3 - <<'PY'
import json, numpy as np, torch
from pathlib import Path
from llava_st.model import LlavaSTModel
root = Path("/").joinpath(*Path(__import__("os").environ["LLAVA_ST_PARITY_DIR"]).parts[1:])
case = json.loads((root / "image_rec/case.json").read_text())
ref = np.load(root / "image_rec/reference.npz")
pix = torch.from_numpy(next(iter(np.load(root / "media/image_pixel_values.npz").values())))
ids = torch.from_numpy(ref["input_ids"])[None]
for dtype in ("float32", "bfloat16", "float16"):
    for attn in ("sdpa", "eager"):
        m = LlavaSTModel.from_pretrained(root / "model", device="cuda", dtype=dtype, attn_implementation=attn)
        out = m.generate(ids, pixel_values=[pix], modalities=["image"], max_new_tokens=len(ref["gen_ids"]), return_scores=True)
        diff = (out.scores[0].cpu() - torch.from_numpy(ref["gen_scores"])).abs().max().item()
        same = out.sequences[0].cpu().tolist() == ref["gen_ids"].tolist()
        print(f"{dtype:9s} {attn:5s} greedy ids equal reference: {same}; max |score diff| {diff:.2e}")
PY
echo "== decode step, 7B shapes, bf16"
python3 bench/model_decode.py --preset 7b --device cuda --dtype bfloat16 --context 2048 --steps 60
echo "== coordinate loss memory on cuda"
python3 bench/coord_loss_memory.py --device cuda
mkdir -p $OUT && cp bench/results/*cuda*.json $OUT/ 2>/dev/null; ls $OUT
