"""Run lessons as a learner runs them in Jupyter: converted by Jupytext, executed top to bottom in a kernel.

    python -m tests.notebooks FOLDER '{"LESSON": ["--flag", "value", ...], ...}'

runs each lesson's notebook in FOLDER/LESSON and writes FOLDER/LESSON/LESSON.ipynb with every cell's
output. The flags reach the lesson through LESSON_ARGS, which common.Parser reads inside a kernel, so
the lesson's cells run unchanged. Starting a kernel and importing PyTorch cost more CPU time than a
small run itself, so the lessons share one kernel, one after another: before each, a setup cell
clears every name the previous lesson defined (%reset), moves to the lesson's folder and sets its
flags.
"""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def lessons():
    """Every lesson: a script beside common.py that imports it and defines main()."""
    return sorted(
        path.stem
        for path in REPO.glob("*.py")
        if "\nimport common\n" in (text := path.read_text()) and "\ndef main(" in text
    )


def start(runs, folder, kernels=1):
    """Run {lesson: flags} as notebooks in `kernels` subprocesses, beside the other tests.

    Returns {lesson: (the Popen running it, its folder)}.
    """
    groups = [dict(list(runs.items())[i::kernels]) for i in range(kernels)]
    started = {}
    for group in filter(None, groups):
        command = [sys.executable, "-m", "tests.notebooks", str(folder), json.dumps(group)]
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.update({lesson: (process, Path(folder) / lesson) for lesson in group})
    return started


def main():
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    folder, runs = Path(sys.argv[1]), json.loads(sys.argv[2])
    # These runs fill the time the tests leave the cores idle: at a lower priority (inherited by the
    # kernel and the lessons' worker processes), the scheduler gives the cores to the tests first, so
    # the tests, which wait for these runs only at the very end, are hardly slowed down by them.
    os.nice(10)
    cells = []
    for lesson, flags in runs.items():
        (folder / lesson).mkdir(parents=True, exist_ok=True)
        setup = [
            "%reset -f",
            "import os",
            f"os.chdir({str(folder / lesson)!r})",
            f"os.environ['LESSON_ARGS'] = {shlex.join(flags)!r}",
        ]
        cells.append(nbformat.v4.new_code_cell("\n".join(setup), metadata={"setup": lesson}))
        for cell in jupytext.read(REPO / f"{lesson}.py").cells:  # the `# %%` cells become notebook cells
            cell.metadata["lesson"] = lesson
            cells.append(cell)
    notebook = nbformat.v4.new_notebook(cells=cells)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel's own inline backend
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")  # `import common` as from beside the lessons
    # The kernel "python3" of this Python's environment (ipykernel installs it there), not one that
    # another Jupyter installation may have left in the user's folders.
    own_kernels = str(Path(sys.prefix) / "share" / "jupyter")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [own_kernels, os.environ.get("JUPYTER_PATH")]))
    # allow_errors: a lesson that fails leaves its error in its cells, and the next lesson still runs.
    NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=True).execute(env=env)
    for lesson in runs:
        own = [cell for cell in notebook.cells if cell.metadata.get("lesson") == lesson]
        nbformat.write(nbformat.v4.new_notebook(cells=own), folder / lesson / f"{lesson}.ipynb")
    failed = [cell for cell in notebook.cells if "setup" in cell.metadata and cell.outputs]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
