"""Helpers shared by the lesson tests."""

import functools
import importlib
import json
import os
import sys
import tempfile
from pathlib import Path

import pytest

# numpy's and scipy's OpenBLAS (under scikit-learn's references) start a thread per core, and its
# threads wait by spinning: next to the lesson runs that share the cores, that spinning costs more
# CPU time than the work itself. Read when the library loads, so set before anything imports it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402

import common  # noqa: E402
from tests import notebooks, scripts  # noqa: E402

# The lessons' tensors are tiny: one thread is faster than two fighting over the cores with the
# lesson scripts that run beside the tests. A learner runs with PyTorch's default thread count, which
# the `learner_threads` fixture restores for the tests that must hold there too.
DEFAULT_THREADS = torch.get_num_threads()
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run a lesson's main(argv) in-process exactly as `python lesson.py ARGS` would.

    Returns (exit status, stdout, stderr); the error paths go through common.run as in the script.
    """

    def run(lesson, argv):
        monkeypatch.setattr(sys, "argv", [f"{lesson.__name__}.py", *argv])
        try:
            common.run(lambda: lesson.main(argv))
            status = 0
        except SystemExit as e:
            status = e.code
        out, err = capsys.readouterr()
        return status, out, err

    return run


# One run per lesson as a learner runs it: `python lesson.py` in a subprocess, with few epochs and
# the figure written to a temporary folder. They start together when the tests are collected and
# run beside the in-process tests; each lesson's smoke test then waits for its own.
SMOKE_ARGS = {
    "LR_noDatasetClass": ["--epochs", "30"],
    "LR_miniBatch_datasetDataLoader": ["--epochs", "5"],
    "LR_miniBatch_PyTorchWay": ["--epochs", "5"],
    "LogReg_PyTorch": ["--epochs", "20"],
    "softmax_classifier": ["--epochs", "5"],
    "mlp_embedding": ["--steps", "100", "--eval-every", "50", "--hidden", "32", "--batch-size", "32", "--out", "out"],
    # Evaluations every 3 steps: the first comes well within the seconds lesson 6's model takes for all
    # 30, so the line "at equal training time" is printed in every run, script and notebook alike.
    "dnn_batchnorm": [
        "--steps",
        "30",
        "--eval-every",
        "3",
        "--hidden",
        "32",
        "--layers",
        "3",
        "--batch-size",
        "32",
        "--out",
        "out",
    ],
    "ddp_training": [
        "--steps",
        "40",
        "--print-every",
        "20",
        "--hidden",
        "32",
        "--layers",
        "1",
        "--batch-size",
        "32",
        "--out",
        "out",
        "--metrics",
        "metrics.json",
    ],
    "cnn_digits": ["--canvas", "12", "--channels", "8,16", "--epochs", "2"],
    "transformer_names": [
        *["--steps", "30", "--eval-every", "15", "--emb-dim", "16", "--heads", "2", "--layers", "1"],
        *["--batch-size", "16", "--samples", "3", "--no-compare", "--out", "out"],
    ],
}
_smoke_runs = {}
_notebook_runs = {}


def pytest_report_header():
    # Which vectorized kernels PyTorch runs here: they change the last digits of every trained number
    # (README.org, "Tests and lint"), so a report from another machine says which ones it had.
    forced = os.environ.get("ATEN_CPU_CAPABILITY")
    how = f"forced by ATEN_CPU_CAPABILITY={forced}" if forced else "picked for this CPU; ATEN_CPU_CAPABILITY unset"
    return f"CPU kernels: {torch.backends.cpu.get_cpu_capability()} ({how})"


def pytest_collection_modifyitems(items):
    # The tests that read the script and notebook runs go last: by then those runs, which started at
    # collection, have finished beside the in-process tests instead of being waited for one by one.
    items.sort(key=lambda item: "script" in item.name or item.module.__name__.endswith("test_notebooks"))


def pytest_collection_finish(session):
    wanted = {
        item.module.__name__.split(".")[-1].removeprefix("test_") for item in session.items if "script" in item.name
    }
    # A lesson run as a notebook (tests/test_notebooks.py) prints what its script prints: start both.
    as_notebook = {
        item.callspec.params["lesson"]
        for item in session.items
        if getattr(item, "originalname", "") == "test_lesson_runs_as_a_notebook"
    }
    folder = Path(tempfile.mkdtemp(prefix="notebooks-"))
    runs = {
        lesson: [*SMOKE_ARGS[lesson], "--figs-dir", str(folder / lesson / "figs")]
        for lesson in sorted(as_notebook & set(SMOKE_ARGS))
    }
    _notebook_runs.update(notebooks.start(runs, folder))
    smoke = {lesson: SMOKE_ARGS[lesson] for lesson in sorted((wanted | as_notebook) & set(SMOKE_ARGS))}
    _smoke_runs.update(
        scripts.start({k: [*v, "--figs-dir", "figs"] for k, v in smoke.items()}, tempfile.mkdtemp(prefix="smoke-"))
    )


@pytest.fixture
def learner_threads():
    """PyTorch's default thread count as a learner has it (at least 2, so that threads really share the
    work), for the duration of one test; the tests' single thread again afterwards."""
    torch.set_num_threads(max(2, DEFAULT_THREADS))
    yield torch.get_num_threads()
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def names_subset(tmp_path_factory):
    """The 3,000 most frequent names of data/names.txt: the real data, quicker to train on."""
    path = tmp_path_factory.mktemp("names") / "names.txt"
    path.write_text("\n".join(common.read_words(REPO / "data" / "names.txt", ".")[:3000]))
    return path


@functools.cache
def _metrics(name, argv):
    return json.dumps(importlib.import_module(name).main(list(argv)))


def metrics_of(lesson, argv):
    """lesson.main(argv), run once in the whole session for the same lesson and arguments: several
    tests check one default run (the lesson's own tests, the saved results, the answers). A fresh copy
    each time, so that no test sees what another one changed."""
    return json.loads(_metrics(lesson.__name__, tuple(argv)))


def smoke_run(lesson):
    """(exit status, stdout, stderr, figures folder) of the lesson's script run (tests/scripts.py).

    The runner process holds other lessons' runs too; it must itself end cleanly."""
    process, folder = _smoke_runs[lesson]
    _, runner_err = process.communicate(timeout=300)
    assert process.returncode == 0, runner_err
    status = int((folder / "status").read_text())
    return status, (folder / "stdout").read_text(), (folder / "stderr").read_text(), folder / "figs"


def notebook_run(lesson):
    """(exit status, stderr, the executed notebook, its folder) of the lesson's notebook run (tests/notebooks.py).

    The status and stderr are those of the kernel's whole run, which holds other lessons too."""
    import nbformat

    process, folder = _notebook_runs[lesson]
    _, err = process.communicate(timeout=600)
    path = folder / f"{lesson}.ipynb"
    return process.returncode, err, nbformat.read(path, as_version=4) if path.exists() else None, folder


def assert_png(path):
    """A complete PNG that matplotlib can read back, with a sensible size."""
    import matplotlib.image

    path = Path(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(path).shape
    assert width > 400 and height > 300


def assert_one_line_error(status, err, *phrases):
    assert status != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
