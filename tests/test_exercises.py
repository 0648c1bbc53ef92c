"""Every exercise of README.org has an answer in ANSWERS.org, and every number an answer states still holds.

ANSWERS.org states its numbers in tables with the header `| run | result | value | within |`: the
command a learner types, the metric it returns (a key of the lesson's main() dict, or of an answer
file's run() dict; dots reach inside, `error` is the one-line error message), the value, and the
tolerance (`1 %`, `± 0.01`, or nothing: equal, or contains the text). A value `< x` or `> x` is a
bound. Each command runs here once, in-process. Tables headed `full-size run` hold the runs that take
longer than the quick suite allows: they carry the `slow` marker (`pytest -m slow` runs them).
"""

import importlib
import inspect
import math
import re
import shlex
import subprocess

import pytest

import common
from tests.conftest import REPO, metrics_of
from tests.test_rendering import ORG_RUBY, github_anchors, org_ruby_installed

ANSWERS = (REPO / "ANSWERS.org").read_text()
README = (REPO / "README.org").read_text()
HEADER = re.compile(r"^\| *(run|full-size run) *\| *result *\| *value *\| *within *\|$")
# a measured-looking number: with a decimal point or an exponent (counts and inputs are left alone)
NUMBER = re.compile(r"(?<![\w.=-])(-?\d+\.\d+(?:e[-+]?\d+)?|-?\d+e[-+]?\d+)( %)?")


def answers():
    """{heading: text} of every answer (the level-1 headings `Lesson N, exercise M`)."""
    parts = re.split(r"^\* ", ANSWERS, flags=re.M)[1:]
    return {p.splitlines()[0].strip(): p for p in parts if p.startswith("Lesson")}


def rows(text):
    """(command, result, value, within, slow) of every checked table in `text`."""
    found, slow = [], None
    for line in text.splitlines():
        header = HEADER.match(line.strip())
        if header:
            slow = header.group(1) == "full-size run"
        elif slow is not None and line.startswith("|") and not line.startswith("|-"):
            command, result, value, within = (c.strip() for c in line.strip().strip("|").split("|"))
            found.append((command.strip("="), result.strip("="), value.strip("="), within, slow))
        elif not line.startswith("|"):
            slow = None
    return found


ROWS = [row for text in answers().values() for row in rows(text)]
COMMANDS = {}
for command, *_, slow in ROWS:
    COMMANDS[command] = COMMANDS.get(command, False) or slow


def run(command, tmp_path):
    """The metrics dict of a command, run in-process; {"error": message} if the lesson stops with one."""
    words = shlex.split(command)
    assert words[0] == "python", command
    if words[1] == "-m":
        module = importlib.import_module(words[2])
        return module.run(words[3:]) if len(words) > 3 else module.run()
    lesson = importlib.import_module(words[1].removesuffix(".py"))
    argv = [*words[2:], "--quiet", "--no-figure"]
    if '"--out"' in inspect.getsource(lesson.parse_args):  # checkpoints go to a temporary folder, not out/
        argv += ["--out", str(tmp_path)]
    try:
        return metrics_of(lesson, argv)  # a default run that other tests check too is run once
    except common.LessonError as e:
        return {"error": str(e)}


def lookup(metrics, path):
    value = metrics
    for key in path.split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


def check(actual, value, within, where):
    if isinstance(actual, str):
        assert value in actual, f"{where}: {actual!r} does not say {value!r}"
    elif value in ("True", "False"):
        assert actual == (value == "True"), where
    elif value.startswith(("<", ">")):
        bound = float(value[1:])
        assert (actual < bound) if value[0] == "<" else (actual > bound), f"{where}: {actual:.6g} is not {value}"
    elif within.endswith("%"):
        assert actual == pytest.approx(float(value), rel=float(within[:-1]) / 100), f"{where}: now {actual:.6g}"
    elif within.startswith("±"):
        assert actual == pytest.approx(float(value), abs=float(within[1:])), f"{where}: now {actual:.6g}"
    else:
        assert actual == type(actual)(value), f"{where}: now {actual}"


@pytest.mark.parametrize(
    "command", [pytest.param(c, marks=pytest.mark.slow) if slow else c for c, slow in COMMANDS.items()]
)
def test_answer_numbers_hold(command, tmp_path):
    metrics = run(command, tmp_path)
    for row_command, result, value, within, _ in ROWS:
        if row_command == command:
            assert result in metrics or "." in result, f"{command}: no {result} in {sorted(metrics)}"
            check(lookup(metrics, result), value, within, f"{command} {result}")


def test_every_lesson_has_2_to_4_exercises_each_linked_to_its_answer():
    headings = answers()
    lessons = re.findall(r"^\* Lesson (\d+):", README, flags=re.M)
    assert lessons
    for n in lessons:
        section = re.split(rf"^\* Lesson {n}:", README, flags=re.M)[1].split("\n* ", 1)[0]
        assert "** Exercises" in section, f"lesson {n} has no exercises"
        exercises = section.split("** Exercises", 1)[1]
        assert "\n** " not in exercises, f"lesson {n}: the exercises must end the section"
        links = re.findall(r"\[\[\./ANSWERS\.org#lesson-(\d+)-exercise-(\d+)\]\[", exercises)
        assert 2 <= len(links) <= 4, f"lesson {n}: {len(links)} exercises"
        for lesson, m in links:
            assert lesson == n
            assert f"Lesson {n}, exercise {m}" in headings, f"no answer for lesson {n}, exercise {m}"
    assert len(headings) == sum(len(re.findall(rf"ANSWERS\.org#lesson-{n}-exercise-", README)) for n in lessons)


def test_every_answer_is_checked_and_states_only_checked_numbers():
    """Each answer has checked rows, and every measured-looking number in its prose is one of its values."""
    for heading, text in answers().items():
        found = rows(text)
        assert found, f"{heading}: no checked table"
        values = {v.lstrip("<>").strip() for _, _, v, _, _ in found}
        texts = " ".join(v for v in values if not _is_number(v))  # an error message states numbers too
        prose = "\n".join(line for line in text.splitlines()[1:] if not line.startswith(("|", "#")))
        prose = re.sub(r"=[^=\n]+=|~[^~\n]+~", "", prose)  # commands and code: inputs, not results
        for number, percent in NUMBER.findall(prose):
            stated = float(number) / 100 if percent else float(number)  # 98.2 % is the accuracy 0.982
            assert number in texts or any(math.isclose(stated, float(v)) for v in values if _is_number(v)), (
                f"{heading}: {number}{percent} in the text is not in its checked table"
            )


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_every_answer_file_is_used_and_runs_from_the_repository_root():
    used = set(re.findall(r"python -m (exercises\.lesson\w+)", ANSWERS))
    files = {f"exercises.{p.stem}" for p in (REPO / "exercises").glob("lesson*.py")}
    assert files and files == used
    for name in files:
        module = importlib.import_module(name)
        assert callable(module.run) and module.__doc__.split(":")[0].startswith("Lesson")


@pytest.mark.skipif(not org_ruby_installed(), reason="org-ruby, GitHub's org renderer, is absent")
def test_every_answer_link_reaches_its_heading_on_github():
    page = subprocess.run(["ruby", "-e", ORG_RUBY, REPO / "ANSWERS.org"], capture_output=True, text=True, check=True)
    anchors = set(github_anchors(page.stdout))
    links = set(re.findall(r"\[\[\./ANSWERS\.org#([^\]]+)\]\[", README))
    assert links and not links - anchors, sorted(links - anchors)
    assert "<table>" in page.stdout and "=python" not in page.stdout  # the tables and commands render
