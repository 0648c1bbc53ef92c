"""The repository keeps its promises: the quick start is what CI runs, the text points at real files."""

import importlib.util
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

LESSONS = sorted(p.stem for p in REPO.glob("*.py") if p.stem != "common")
README = (REPO / "README.org").read_text()


def test_ci_runs_the_readme_test_command():
    quick_start = README.split("* Quick start", 1)[1].split("\n* ", 1)[0]
    commands = re.findall(r"#\+begin_src sh :eval no\n(.*?)\n#\+end_src", quick_start, re.S)
    assert len(commands) == 2
    ci = (REPO / ".ci" / "run").read_text()
    assert commands[1] in ci.splitlines()
    assert commands[0].startswith(commands[1].rsplit(" && ", 1)[0])  # same install step


def test_requirements_keep_torch_below_2_14():
    torch_line = next(line for line in (REPO / "requirements.txt").read_text().splitlines() if line.startswith("torch"))
    assert "<2.14" in torch_line.replace(" ", "")


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_lesson_has_a_section_a_figure_and_tests(lesson):
    assert f"={lesson}.py=" in README
    assert (REPO / "figs" / f"{lesson}.png").is_file()
    assert (REPO / "tests" / f"test_{lesson}.py").is_file()


def test_every_image_link_points_to_a_file():
    links = re.findall(r"\[\[file:([^\]]+\.png)\]\]", README)
    assert links
    for link in links:
        assert (REPO / link).is_file(), link


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff is not installed")
@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_lint(command):
    result = subprocess.run([sys.executable, "-m", "ruff", *command, str(REPO)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
