"""Which lmms-eval module this interpreter collects.

lmms-eval cannot live in the dev environment (it pins av<16 and filelock<4 and pulls a
large stack), so its tests run in a side virtual environment (``.venv-lmms``, built by
the README's test command). Where lmms-eval imports, ``test_lmms_eval.py`` runs here;
elsewhere ``test_lmms_eval_side.py`` runs it with pytest under ``$LLAVA_ST_LMMS_PYTHON``
(skipped without it, failed under ``CI=true``).
"""

from __future__ import annotations

import importlib.util

HAVE_LMMS_EVAL = importlib.util.find_spec("lmms_eval") is not None

collect_ignore = ["test_lmms_eval_side.py"] if HAVE_LMMS_EVAL else ["test_lmms_eval.py"]
