"""Every lesson also runs as a notebook: Jupytext turns its `# %%` cells into cells, a kernel runs them.

The runs start when the tests are collected (tests/conftest.py, tests/notebooks.py), with each lesson's
small smoke-run flags passed through LESSON_ARGS, and run beside the other tests. Every top-level script
that imports common and defines main() is a lesson here, so a new lesson is tested without listing it.
"""

import re
import sys
import types

import pytest

from tests import notebooks
from tests.conftest import SMOKE_ARGS, assert_png, notebook_run, smoke_run


def printed(text):
    """The lines a run printed, every number masked: timings (`0.41 s`, `33 steps/s`) differ between runs."""
    return [re.sub(r"\d+(\.\d*)?(e[+-]?\d+)?", "#", " ".join(line.split())) for line in text.splitlines()]


@pytest.mark.parametrize("lesson", notebooks.lessons())
def test_lesson_runs_as_a_notebook(lesson):
    assert lesson in SMOKE_ARGS, f"register small flags for {lesson} in SMOKE_ARGS (tests/conftest.py)"
    status, err, notebook, folder = notebook_run(lesson)
    assert status == 0 and notebook is not None, err[-3000:]
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    errors = [f"{output.ename}: {output.evalue}" for output in outputs if output.output_type == "error"]
    assert not errors, errors
    # the figure is shown in the notebook and saved as a file, as the script saves it
    shown = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(shown) == 1
    assert_png(folder / "figs" / f"{lesson}.png")
    # it prints what the script prints, line by line
    stdout = "".join(output.text for output in outputs if output.output_type == "stream" and output.name == "stdout")
    script_status, script_out, _, _ = smoke_run(lesson)
    assert script_status == 0
    assert printed(stdout) == printed(script_out)


@pytest.fixture
def in_a_kernel(monkeypatch):
    """What a lesson sees inside Jupyter: ipykernel is loaded, and sys.argv holds the kernel's arguments."""
    monkeypatch.setitem(sys.modules, "ipykernel", sys.modules.get("ipykernel") or types.ModuleType("ipykernel"))
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "-f", "/tmp/kernel-1234.json"])
    monkeypatch.delenv("LESSON_ARGS", raising=False)
    return monkeypatch


def test_in_a_notebook_a_lesson_ignores_the_kernels_arguments(in_a_kernel):
    import LR_noDatasetClass

    assert LR_noDatasetClass.parse_args(None).epochs == LR_noDatasetClass.parse_args([]).epochs
    assert LR_noDatasetClass.parse_args(["--epochs", "7"]).epochs == 7  # main([...]) in a cell


def test_in_a_notebook_lesson_args_sets_the_flags(in_a_kernel):
    import LR_noDatasetClass

    in_a_kernel.setenv("LESSON_ARGS", "--epochs 7 --lr-b 0.05")
    args = LR_noDatasetClass.parse_args(None)
    assert (args.epochs, args.lr_b) == (7, 0.05)
