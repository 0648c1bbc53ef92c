"""Helpers shared by the lesson tests."""

import subprocess
import sys
from pathlib import Path

import pytest

import common

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


def run_script(name, *args, cwd):
    """The script as a learner runs it, in a subprocess."""
    return subprocess.run(
        [sys.executable, str(REPO / name), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


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
