"""Bad input to any lesson ends in one clear line, never a traceback, and leaves nothing behind.

Every flag of every lesson is read from the lesson's own parser (the one `common.parser` builds),
so a new flag, or a new lesson, is covered the day it is added. Each flag gets a table of bad values
for its kind; every case must either succeed with finite metrics or stop with the one-line
`lesson.py: error: ...` of a non-zero exit, within a few seconds, leaving no temporary file.
"""

import argparse
import importlib
import math
import sys
import time
import warnings

import numpy as np
import pytest

import common
from tests.conftest import REPO, SMOKE_ARGS

# A lesson is a top-level script that uses the shared plumbing and has main().
LESSONS = sorted(
    path.stem
    for path in REPO.glob("*.py")
    if path.stem != "common" and "import common" in (text := path.read_text()) and "def main(" in text
)

# Small runs, so that a case that succeeds takes a fraction of a second ({words}: a file of 300
# names). A lesson not listed here starts from its smoke-test arguments, and must be quick with them.
BASE_ARGS = {
    "LR_noDatasetClass": ["--epochs", "5"],
    "LR_miniBatch_datasetDataLoader": ["--epochs", "2", "--n", "40"],
    "LR_miniBatch_PyTorchWay": ["--epochs", "2"],
    "LogReg_PyTorch": ["--epochs", "2", "--n", "40"],
    "softmax_classifier": ["--epochs", "3", "--data", "{words}", "--samples", "2"],
    "mlp_embedding": [
        *["--steps", "20", "--eval-every", "10", "--data", "{words}", "--samples", "2"],
        *["--block-size", "3", "--emb-dim", "4", "--hidden", "16", "--layers", "1", "--batch-size", "32"],
    ],
    "dnn_batchnorm": [
        *["--steps", "20", "--eval-every", "10", "--data", "{words}", "--samples", "2", "--no-compare"],
        *["--block-size", "3", "--emb-dim", "4", "--hidden", "16", "--layers", "2", "--batch-size", "32"],
    ],
    # one worker: the run stays in this process (starting worker processes takes seconds)
    "ddp_training": [
        *["--workers", "1", "--steps", "5", "--print-every", "5", "--data", "{words}", "--timeout", "20"],
        *["--block-size", "3", "--emb-dim", "4", "--hidden", "16", "--layers", "1", "--batch-size", "32"],
    ],
    "cnn_digits": ["--canvas", "9", "--channels", "2", "--epochs", "1", "--test-fraction", "0.95"],
    # with the comparison: lesson 6's MLP trains for as long as this tiny transformer did; no samples in
    # the base run (sampling is what a run costs most here), the cases of --samples draw them
    "transformer_names": [
        *["--steps", "10", "--eval-every", "5", "--data", "{words}", "--samples", "0"],
        *["--emb-dim", "8", "--heads", "2", "--layers", "1", "--batch-size", "16"],
    ],
}
NUMBERS = ["0", "1", "-1", "0.999", "nan", "inf", "-inf", "1e30", "-1e30", "ten", ""]
CHOICES = ["nope", ""]
# Limits in CPU seconds of this process, which a busy machine does not inflate as it does wall time.
SECONDS = 5  # the most one case may take
BASE_SECONDS = 1  # the most the base run may take: each case that succeeds costs about as much


def lesson_parser(lesson):
    """The parser the lesson builds, caught as `common.parser` hands it over (main stops at --help)."""
    built = []
    original = common.parser

    def catch(*args, **kwargs):
        built.append(original(*args, **kwargs))
        return built[-1]

    common.parser = catch
    try:
        lesson.main(["--help"])
    except SystemExit:
        pass
    finally:
        common.parser = original
    assert built, f"{lesson.__name__} does not build its parser with common.parser"
    return built[-1]


def kind(action):
    """What sort of value a flag takes, from its argparse action."""
    if action.nargs == 0:
        return "switch"
    if action.choices is not None:
        return "choice"
    if action.type in (common.output_dir, common.output_file):
        return action.type.__name__
    if action.type in (None, str) or "Path" in getattr(action.type, "__name__", ""):
        return "input"
    try:
        action.type("0.5")
    except (ValueError, argparse.ArgumentTypeError):
        return "integer"  # int() refuses "0.5"
    return "number"


@pytest.fixture
def files(tmp_path):
    """Input files of every wrong sort, and paths that cannot be outputs."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    made = {
        "missing": folder / "missing.txt",
        "folder": folder / "a_folder",
        "empty": folder / "empty.txt",
        "binary": folder / "binary.bin",
        "wrong format": folder / "table.csv",
        "one line": folder / "one_line.txt",
        "npy of the wrong shape": folder / "cube.npy",
        "npy of one row": folder / "row.npy",
    }
    made["folder"].mkdir()
    made["empty"].write_bytes(b"")
    made["binary"].write_bytes(bytes(range(256)) * 4)
    made["wrong format"].write_text("x,y\n1.5,2\n-3,4.25\n")
    made["one line"].write_text("emily\n")  # every letter once: each next letter is certain
    np.save(made["npy of the wrong shape"], np.zeros((4, 3, 2)))
    np.save(made["npy of one row"], np.ones((1, 2), dtype=np.float32))
    a_file = folder / "a_file"
    a_file.write_text("in the way\n")
    outputs = {
        "uncreatable": "/proc/nope/x",
        "under a file": str(a_file / "sub"),
        "empty": "",
    }
    return {
        "input": {name: str(path) for name, path in made.items()},
        "output_dir": {**outputs, "an existing file": str(a_file)},
        "output_file": {**outputs, "an existing folder": str(made["folder"])},
    }


def bad_values(flag_kind, files):
    """(label, value) pairs: the values a mistyping learner might give, by kind (None: no value at all)."""
    if flag_kind == "switch":
        return [("given", None)]  # a switch takes no value: giving it is the only case
    values = {"choice": CHOICES, "integer": NUMBERS, "number": NUMBERS}.get(flag_kind)
    cases = [(repr(v), v) for v in values] if values else list(files[flag_kind].items())
    return [*cases, ("no value", None)]


def finite(value):
    """True if every number in a metrics value (nested lists and dicts too) is finite."""
    if isinstance(value, dict):
        return all(finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(finite(v) for v in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return math.isfinite(value)
    return True


def run_case(lesson, argv, capsys, monkeypatch):
    """(status, metrics, stdout, stderr, problem) of `python lesson.py ARGV`, run in-process."""
    script = f"{lesson.__name__}.py"
    monkeypatch.setattr(sys, "argv", [script, *argv])
    result = {}
    problem = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            common.run(lambda: result.update(metrics=lesson.main(argv)))
            status = 0
        except SystemExit as e:
            status = e.code
        except Exception as e:  # a traceback for the learner
            status, problem = None, f"raised {type(e).__name__}: {e}"
    out, err = capsys.readouterr()
    if problem is None and caught:
        problem = f"warned {caught[0].category.__name__}: {caught[0].message}"
    if problem is None:
        lines = err.strip().splitlines()
        if status == 0:
            if not isinstance(result.get("metrics"), dict) or not finite(result["metrics"]):
                problem = f"succeeded without finite metrics: {result.get('metrics')}"
            elif err.strip():
                problem = f"succeeded but wrote to stderr: {err.strip()[:200]}"
        elif not status or len(lines) != 1 or not lines[0].startswith(f"{script}: error: "):
            problem = f"exit status {status} and stderr {err.strip()[:300]!r}"
    return status, problem


@pytest.mark.parametrize("name", LESSONS)
def test_every_flag_survives_bad_values(name, files, tmp_path, capsys, monkeypatch):
    lesson = importlib.import_module(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # anything a lesson writes by a relative path lands here
    words = tmp_path / "words.txt"
    words.write_text("\n".join(common.read_words(REPO / "data" / "names.txt", ".")[:300]) + "\n")
    base = [arg.replace("{words}", str(words)) for arg in BASE_ARGS.get(name, SMOKE_ARGS.get(name, []))]
    base += ["--quiet", "--no-figure", "--figs-dir", str(work / "figs"), "--metrics", str(work / "metrics.json")]
    if "--out" in lesson_parser(lesson)._option_string_actions:
        base += ["--out", str(work / "out")]

    start = time.process_time()
    status, problem = run_case(lesson, base, capsys, monkeypatch)
    assert status == 0 and problem is None, f"the base run fails: {problem}"
    seconds = time.process_time() - start
    if seconds >= BASE_SECONDS:  # the first run may have paid for imports: time it again without them
        start = time.process_time()
        run_case(lesson, base, capsys, monkeypatch)
        seconds = time.process_time() - start
    assert seconds < BASE_SECONDS, f"the base run {base} takes {seconds:.1f} CPU s: give smaller ones in BASE_ARGS"

    parser = lesson_parser(lesson)
    failures, cases, slowest = [], 0, (0.0, "")
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        flag = action.option_strings[-1]
        flag_kind = kind(action)
        if flag_kind == "switch" and flag in base:
            continue  # given again, it is the base run itself
        for label, value in bad_values(flag_kind, files):
            argv = [*base, flag if value is None else f"{flag}={value}"]  # "=": "-1" is not taken for a flag
            start = time.process_time()
            status, problem = run_case(lesson, argv, capsys, monkeypatch)
            seconds = time.process_time() - start
            cases += 1
            slowest = max(slowest, (seconds, f"{flag} {label}"))
            left = [p.name for p in tmp_path.rglob(".*")]  # a temporary file, anywhere a case wrote
            if problem is None and seconds > SECONDS:
                problem = f"took {seconds:.1f} CPU s"
            if problem is None and left:
                problem = f"left {left} behind"
            if problem:
                failures.append(f"{flag} ({flag_kind}) {label}: {problem}")
    print(f"{name}: {cases} cases over {len(parser._actions) - 1} flags; slowest {slowest[1]} ({slowest[0]:.2f} CPU s)")
    assert not failures, f"{len(failures)} of {cases} cases fail:\n" + "\n".join(failures)


def test_a_write_that_fails_is_one_line_and_leaves_no_temporary_file(tmp_path):
    def disk_full(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(common.LessonError, match="cannot write .*metrics.json: No space left on device"):
        common.write_atomically(tmp_path / "metrics.json", disk_full)
    assert list(tmp_path.iterdir()) == []
