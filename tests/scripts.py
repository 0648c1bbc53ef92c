"""Run lessons as a learner runs them from a terminal, several in one Python process.

    python -m tests.scripts FOLDER '{"LESSON": ["--flag", "value", ...], ...}'

runs each lesson as `python LESSON.py FLAGS` would, one after another: the file is executed as the
module __main__ (runpy, which is what `python file.py` uses), with sys.argv set, in its own folder
FOLDER/LESSON, with no screen. Its output goes to FOLDER/LESSON/stdout and stderr at the level of
the file descriptors, so that what its worker processes print is caught too; its exit status goes to
FOLDER/LESSON/status. Importing PyTorch, matplotlib and scikit-learn costs more CPU time than a small
run itself, so the lessons share the process and pay for the imports once.
"""

import json
import os
import runpy
import subprocess
import sys
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def start(runs, folder, processes=1):
    """Run {lesson: flags} in `processes` subprocesses, beside the other tests.

    Returns {lesson: (the Popen running it, its folder)}.
    """
    groups = [dict(list(runs.items())[i::processes]) for i in range(processes)]
    started = {}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # small tensors; the runs share the cores
    for group in filter(None, groups):
        command = [sys.executable, "-m", "tests.scripts", str(folder), json.dumps(group)]
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        started.update({lesson: (process, Path(folder) / lesson) for lesson in group})
    return started


def run_one(lesson, flags, folder):
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)
    sys.argv = [str(REPO / f"{lesson}.py"), *flags]
    saved = os.dup(1), os.dup(2)
    with open(folder / "stdout", "w") as out, open(folder / "stderr", "w") as err:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            runpy.run_path(sys.argv[0], run_name="__main__")
            status = 0
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            traceback.print_exc()
            status = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
    (folder / "status").write_text(str(status))


def main():
    folder, runs = Path(sys.argv[1]), json.loads(sys.argv[2])
    # These runs fill the time the tests leave the cores idle: at a lower priority (inherited by the
    # lessons' worker processes), the scheduler gives the cores to the tests first, so the tests, which
    # wait for these runs only at the very end, are hardly slowed down by them.
    os.nice(10)
    for lesson, flags in runs.items():
        run_one(lesson, flags, folder / lesson)


if __name__ == "__main__":
    main()
