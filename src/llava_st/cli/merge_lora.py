"""``llava-st merge-lora``: fold a LoRA adapter into a base model and write the merged model.

Example (stage 3 starts from stage 1 with the stage-2 adapter merged)::

    llava-st merge-lora --base runs/tiny/stage1/final --adapter runs/tiny/stage2/final/adapter \\
        --out runs/tiny/stage1+2

``--adapter`` is an adapter folder in the release's LoRA layout
(``adapter_config.json``, ``adapter_model.safetensors``, and the other trained
tensors in ``non_lora_trainables.safetensors`` (ours) or
``non_lora_trainables.bin`` (the release's, read with ``weights_only``)).
Each adapted weight becomes ``W + (alpha / r) B A`` in float32. ``--out``
gets the merged weights in the release layout with the base's tokenizer and
processor files, loadable by ``LlavaSTModel.from_pretrained`` and
``LlavaST.from_pretrained``.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", required=True, help="the base model folder (release layout)")
    parser.add_argument("--adapter", required=True, help="the LoRA adapter folder")
    parser.add_argument("--out", required=True, help="where to write the merged model")
    parser.add_argument(
        "--dtype", choices=("float32", "bfloat16", "float16"), default=None, help="weights' dtype (default: float32)"
    )


def run(args: argparse.Namespace) -> int:
    from ..train.export import merge_adapter_folder

    counts = merge_adapter_folder(args.base, args.adapter, args.out, dtype=args.dtype)
    print(json.dumps({"out": args.out, **counts}))
    return 0
