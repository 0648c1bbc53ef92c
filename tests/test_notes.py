"""README.org's Notes chapter: its maps of the lessons match the lesson files as they are now.

Its python blocks are run, and their output checked, by tests/test_readme.py like every other block.
"""

import ast
import importlib
import re

import pytest

from tests.conftest import REPO
from tests.test_readme import BLOCK

README = (REPO / "README.org").read_text()
STEPS = ["load the data", "create the model", "train", "look at the result"]
MODULES = ["torch", "torch.nn", "torch.nn.functional", "torch.optim", "torch.utils.data", "torch.distributed"]


def chapter():
    parts = re.split(r"^\* ", README, flags=re.M)
    found = [p for p in parts if p.startswith("Notes\n")]
    assert len(found) == 1, "README.org has no (or more than one) top-level Notes heading"
    return found[0]


def lessons_on_disk():
    """Every lesson script: a top-level .py file that imports common and defines main."""
    found = []
    for path in sorted(REPO.glob("*.py")):
        text = path.read_text()
        if re.search(r"^import common$", text, re.M) and re.search(r"^def main\(", text, re.M):
            found.append(path.stem)
    return found


def lesson_numbers():
    """{script stem: lesson number}, from README.org's lesson headings: "* Lesson N: ... (=script.py=)"."""
    return {script: int(n) for n, script in re.findall(r"^\* Lesson (\d+): .*\(=(\w+)\.py=\)$", README, re.M)}


def table_rows(text):
    """The cells of each row of the first org table in text, header and rules left out."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:] if not line.startswith("|-")]


def cell_map():
    """{script stem: (lesson number, [cell names of each of the four steps])}."""
    body = chapter().split("# cell map: start", 1)[1].split("# cell map: end", 1)[0]
    rows = {}
    for number, script, *steps in table_rows(body):
        assert len(steps) == len(STEPS), script
        rows[script.strip("=").removesuffix(".py")] = (int(number), [[c.strip() for c in s.split(",")] for s in steps])
    return rows


def cells(lesson):
    """The lesson's `# %%` cells, each named by its heading up to the colon, in file order."""
    text = (REPO / f"{lesson}.py").read_text()
    return [heading.split(":")[0].strip() for heading in re.findall(r"^# %% (.+)$", text, re.M)]


def test_notes_chapter_follows_the_lessons_and_is_in_the_contents():
    assert ":CUSTOM_ID: notes\n" in chapter()
    assert "- [[#notes][Notes]]\n" in README.split("* Contents\n", 1)[1].split("\n* ", 1)[0]
    headings = re.findall(r"^\* (.+)$", README, re.M)
    position = headings.index("Notes")
    assert all(not h.startswith("Lesson") for h in headings[position:]), "a lesson section comes after Notes"
    assert position > max(i for i, h in enumerate(headings) if h.startswith("Lesson"))


def test_notes_chapter_shows_its_claims_in_blocks_that_run_and_writes_no_raw_latex():
    text = chapter()
    runnable = [m for m in BLOCK.finditer(text) if ":eval no" not in m.group(1)]
    assert len(runnable) >= 7
    assert all(m.group(3) for m in runnable)  # each shows its output, which test_readme.py checks
    for latex in ["\\frac", "\\[", "\\(", "\\begin"]:
        assert latex not in text, f"GitHub shows {latex} as raw text"


def test_cell_map_lists_every_lesson_under_its_number():
    numbers = lesson_numbers()
    table = cell_map()
    missing = set(lessons_on_disk()) - set(table)
    assert not missing, f"lessons missing from the Notes chapter's cell map: {sorted(missing)}"
    for lesson, (number, _) in table.items():
        assert lesson in lessons_on_disk(), f"the cell map names {lesson}.py, which is not a lesson"
        assert numbers.get(lesson) == number, f"{lesson}.py is lesson {numbers.get(lesson)}, the cell map says {number}"


@pytest.mark.parametrize("lesson", lessons_on_disk())
def test_cell_map_names_every_cell_of_the_lesson_and_only_those(lesson):
    if lesson not in cell_map():
        pytest.skip("not in the cell map: test_cell_map_lists_every_lesson_under_its_number fails")
    found = cells(lesson)
    assert found[0] == "Setup", f"{lesson}.py does not open with a Setup cell"
    _, steps = cell_map()[lesson]
    named = {name for step in steps for name in step}
    for step, names in zip(STEPS, steps):
        assert names != [""], f"{lesson}: no cell for the step '{step}'"
    assert named <= set(found), f"{lesson}.py has no cell {sorted(named - set(found))}; its cells: {found}"
    assert set(found) - {"Setup"} <= named, f"{lesson}.py's cells {sorted(set(found) - {'Setup'} - named)} are unmapped"


def modules_used(lesson):
    """The torch modules whose names the lesson's code uses, found from its imports and attribute chains."""
    tree = ast.parse((REPO / f"{lesson}.py").read_text())
    alias = {}  # local name -> the dotted name it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                alias[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                alias[a.asname or a.name] = f"{node.module}.{a.name}"
    inner = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in inner or not isinstance(node, (ast.Attribute, ast.Name)):
            continue
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in alias:
            names.add(".".join([alias[node.id], *reversed(parts)]))
    used = set()
    for name in names:  # each name counts for the most specific module it lies in
        inside = [m for m in MODULES if name == m or name.startswith(m + ".")]
        if inside:
            used.add(max(inside, key=len))
    return used


def test_module_map_names_the_lessons_that_use_each_module():
    body = chapter().split("** The module map", 1)[1]
    rows = {row[0].strip("="): row[2] for row in table_rows(body)}
    numbers = lesson_numbers()
    assert set(rows) == set(MODULES)
    unnumbered = set(lessons_on_disk()) - set(numbers)
    assert not unnumbered, f"lessons with no '* Lesson N: ...' section in README.org: {sorted(unnumbered)}"
    for module, listed in rows.items():
        listed = {int(n) for n in listed.split(",") if n.strip()}
        using = {numbers[lesson] for lesson in lessons_on_disk() if module in modules_used(lesson)}
        assert listed == using, f"{module}: the map lists lessons {sorted(listed)}, the code uses it in {sorted(using)}"


def test_closing_commands_are_the_measured_example_with_flags_that_exist(capsys):
    text = chapter()
    commands = text.rsplit("#+begin_src sh :eval no\n", 1)[1].split("#+end_src", 1)[0].splitlines()
    measured = next(m for m in BLOCK.finditer(text) if "main([*flags" in m.group(2))
    assert len(commands) >= 2
    for command in commands:
        python, script, *flags = command.split()
        lesson = script.removesuffix(".py")
        assert python == "python" and lesson in lessons_on_disk(), command
        assert f"import {lesson}" in measured.group(2)
        with pytest.raises(SystemExit):
            importlib.import_module(lesson).parse_args(["--help"])
        help_text = capsys.readouterr().out
        for i in range(0, len(flags), 2):
            assert flags[i] in help_text, f"{command}: no flag {flags[i]}"
            # the block runs these same flags, and prints the one that changes from run to run
            assert f'"{flags[i]}"' in measured.group(2), f"{command}: the measured block does not pass {flags[i]}"
            assert f'"{flags[i + 1]}"' in measured.group(2) or f"{flags[i]} {flags[i + 1]}" in measured.group(3)


def test_every_flag_the_chapter_mentions_exists(capsys):
    mentioned = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", chapter()))
    help_texts = ""
    for lesson in lessons_on_disk():
        with pytest.raises(SystemExit):
            importlib.import_module(lesson).parse_args(["--help"])
        help_texts += capsys.readouterr().out
    assert mentioned
    for flag in mentioned:
        assert flag in help_texts, f"the Notes chapter mentions {flag}, which no lesson's --help lists"


def test_every_link_in_the_chapter_leads_to_a_section():
    targets = set(re.findall(r"^:CUSTOM_ID: (\S+)$", README, re.M))
    links = re.findall(r"\[\[#([^]]+)\]", chapter())
    assert links
    for link in links:
        assert link in targets, f"the Notes chapter links to #{link}, which no section's CUSTOM_ID is"
