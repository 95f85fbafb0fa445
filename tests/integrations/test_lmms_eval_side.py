"""``test_lmms_eval.py`` run under the side interpreter that has lmms-eval.

lmms-eval cannot be installed beside the dev extra (it pins av<16 and filelock<4 and pulls
a large stack), so it lives in a side virtual environment, ``.venv-lmms``, built by the
README's test command, which names its python in ``$LLAVA_ST_LMMS_PYTHON``. This module is
collected where lmms-eval does not import (``conftest.py`` here): it runs
``test_lmms_eval.py`` with pytest under that interpreter, so that lmms-eval's CLI run and
the ``LlavaST.ask_batch`` reference it is compared with both run there, and it fails
unless every test of that file passed. Without the variable it is skipped with directions,
except under ``CI=true``, where it fails (the rule of ``conftest.locate_parity_fixtures``);
a variable that names no interpreter fails everywhere.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import _truthy

LMMS_PYTHON_ENV = "LLAVA_ST_LMMS_PYTHON"
REPO = Path(__file__).resolve().parents[2]
LMMS_TESTS = Path(__file__).with_name("test_lmms_eval.py")
HOW = (
    f"to run it, build the side venv as the README's test command does (python3 -m venv .venv-lmms && "
    f".venv-lmms/bin/python -m pip install torch==2.13.0 -e '.[lmms-eval]' 'filelock<4' pytest && "
    f".venv-lmms/bin/python -m pip uninstall -y torchvision) and set {LMMS_PYTHON_ENV}=.venv-lmms/bin/python"
)


@dataclass(frozen=True)
class SideInterpreter:
    """The side interpreter and what the test must do: ``action`` is ``"use"``, ``"skip"`` or ``"fail"``."""

    python: Path | None
    action: str
    message: str


def locate_lmms_python(environ: Mapping[str, str] | None = None) -> SideInterpreter:
    """Apply the skip/fail rule to ``$LLAVA_ST_LMMS_PYTHON`` and ``$CI`` (default ``os.environ``)."""
    environ = os.environ if environ is None else environ
    value = environ.get(LMMS_PYTHON_ENV) or None
    if value:
        python = Path(os.path.abspath(value))  # not resolve(): a venv's python is a symlink to the base interpreter
        if python.is_file() and os.access(python, os.X_OK):
            return SideInterpreter(python, "use", f"lmms-eval tests under {python}")
        return SideInterpreter(python, "fail", f"{LMMS_PYTHON_ENV} is set but {python} is no executable python; {HOW}")
    if _truthy(environ.get("CI")):
        return SideInterpreter(
            None, "fail", f"CI=true but lmms-eval is not importable here and {LMMS_PYTHON_ENV} is not set; {HOW}"
        )
    return SideInterpreter(None, "skip", f"lmms-eval is not importable here and {LMMS_PYTHON_ENV} is not set; {HOW}")


_PROBE = "import lmms_eval, pytest, llava_st, os; print(os.path.dirname(os.path.abspath(llava_st.__file__)))"


def test_lmms_eval_tests_pass_under_the_side_interpreter(tmp_path: Path) -> None:
    side = locate_lmms_python()
    if side.action == "skip":
        pytest.skip(side.message)
    if side.action == "fail":
        pytest.fail(side.message, pytrace=False)
    probe = subprocess.run([str(side.python), "-c", _PROBE], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, f"{side.python} cannot run the lmms-eval tests: {probe.stderr[-2000:]}\n{HOW}"
    where = Path(probe.stdout.strip().splitlines()[-1]).resolve()
    assert where == (REPO / "src" / "llava_st").resolve(), (
        f"{side.python} imports llava_st from {where}, not from this checkout; install it there with pip install -e {REPO}"
    )

    report = tmp_path / "side.xml"
    env = {k: v for k, v in os.environ.items() if k != LMMS_PYTHON_ENV}
    cmd = [str(side.python), "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'side'}",
           f"--junitxml={report}", str(LMMS_TESTS)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    rc, log = proc.returncode, f"{' '.join(cmd)}\n{proc.stdout[-8000:]}{proc.stderr[-2000:]}"
    assert rc == 0, log
    outcomes = _outcomes(report)
    tree = ast.parse(LMMS_TESTS.read_text())
    expected = {f.name for f in tree.body if isinstance(f, ast.FunctionDef) and f.name.startswith("test_")}
    assert expected and outcomes == dict.fromkeys(expected, "passed"), f"{outcomes}\n{log}"
    print(proc.stdout.strip().splitlines()[-1])  # the side run's summary line, shown with -rP


def _outcomes(report: Path) -> dict[str, str]:
    """test name -> passed / failed / error / skipped, from a JUnit XML report."""
    out = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        kinds = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
        out[case.get("name", "")] = kinds[0] if kinds else "passed"
    return out


def test_missing_side_interpreter_skips_off_ci_and_fails_under_ci(tmp_path: Path) -> None:
    for ci in (None, "", "false", "0"):
        found = locate_lmms_python({} if ci is None else {"CI": ci})
        assert found.action == "skip" and found.python is None and LMMS_PYTHON_ENV in found.message
    for ci in ("true", "True", "1", "yes"):
        found = locate_lmms_python({"CI": ci, LMMS_PYTHON_ENV: ""})
        assert found.action == "fail" and "CI=true" in found.message and ".venv-lmms" in found.message


def test_a_named_side_interpreter_is_used_and_a_wrong_name_fails(tmp_path: Path) -> None:
    for ci in ({}, {"CI": "true"}):
        found = locate_lmms_python({LMMS_PYTHON_ENV: sys.executable, **ci})
        assert found.action == "use" and found.python == Path(os.path.abspath(sys.executable))
        wrong = locate_lmms_python({LMMS_PYTHON_ENV: str(tmp_path / "typo" / "python"), **ci})
        assert wrong.action == "fail" and str(tmp_path / "typo" / "python") in wrong.message
