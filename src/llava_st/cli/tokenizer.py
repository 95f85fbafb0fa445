"""``llava-st tokenizer``: train a small byte-level BPE tokenizer on ST-Synth text, in the release layout.

Example (the embedded model's tokenizer)::

    llava-st tokenizer --data runs/embedded/data --out runs/embedded/tokenizer

Reads every training file of the ST-Synth folder (``train/*.json``), learns
at most ``--vocab-size`` base tokens (256 bytes, the 3 chat tokens, merges)
and adds the release's markers, placeholders and ``--time-bins`` +
2 x ``--space-bins`` bin tokens (:mod:`llava_st.embedded.tokenizer`). Writes
the tokenizer files to ``--out`` and prints the text vocabulary size ``V``
that the model's embedding must have.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ._args import positive


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="an ST-Synth folder (its train/*.json are the corpus)")
    parser.add_argument("--out", required=True, help="folder to write the tokenizer to")
    parser.add_argument("--vocab-size", type=positive, default=1024, help="most base tokens (bytes + chat + merges)")
    parser.add_argument("--time-bins", type=positive, default=100, help="time bins of the model")
    parser.add_argument("--space-bins", type=positive, default=100, help="bins per spatial axis of the model")


def run(args: argparse.Namespace) -> int:
    from ..embedded.tokenizer import train_tokenizer_on_folder
    from ..protocol.tokens import BinCounts

    tok = train_tokenizer_on_folder(args.data, BinCounts(args.time_bins, args.space_bins), args.vocab_size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(out))
    bins = args.time_bins + 2 * args.space_bins
    print(json.dumps({"out": str(out), "tokens": len(tok), "text_vocab_size": len(tok) - bins}))
    return 0
