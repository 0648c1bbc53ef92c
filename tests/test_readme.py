"""README.org is a verified course text: its code runs, its flags exist, its numbers match the scripts."""

import contextlib
import importlib
import importlib.util
import io
import json
import re

import pytest

from tests.conftest import REPO

README = (REPO / "README.org").read_text()
LESSONS = ["LR_noDatasetClass", "LR_miniBatch_datasetDataLoader", "LR_miniBatch_PyTorchWay", "LogReg_PyTorch",
           "softmax_classifier", "mlp_embedding"]  # fmt: skip
BLOCK = re.compile(r"#\+begin_src python([^\n]*)\n(.*?)#\+end_src\n(?:\n#\+RESULTS:\n((?::(?: [^\n]*)?\n)*))?", re.S)
RUNNABLE = [m for m in BLOCK.finditer(README) if ":eval no" not in m.group(1)]


def test_every_python_block_either_runs_with_its_results_or_is_marked_eval_no():
    assert len(RUNNABLE) >= 4
    for block in BLOCK.finditer(README):
        assert ":eval no" in block.group(1) or block.group(3), block.group(2)[:80]


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda m: m.group(2).splitlines()[-1][:40])
def test_python_block_prints_its_results(block):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block.group(2), "README.org", "exec"), {})
    expected = [line[2:] if line.startswith(": ") else line[1:] for line in block.group(3).splitlines()]
    assert out.getvalue().splitlines() == expected


def sections():
    """{lesson: the text of its README section}."""
    parts = re.split(r"^\* ", README, flags=re.M)
    found = {}
    for lesson in LESSONS:
        found[lesson] = next(p for p in parts if p.startswith("Lesson") and f"={lesson}.py=" in p.splitlines()[0])
    return found


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_lesson_section_shows_code_and_its_figure(lesson):
    section = sections()[lesson]
    assert "#+begin_src python" in section
    assert f"[[file:figs/{lesson}.png]]" in section
    assert "#+begin_example" in section  # what the script printed


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_flag_the_text_mentions_exists(lesson, capsys):
    module = importlib.import_module(lesson)
    with pytest.raises(SystemExit):
        module.parse_args(["--help"])
    help_text = capsys.readouterr().out
    mentioned = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", sections()[lesson]))
    assert mentioned, lesson
    for flag in mentioned:
        assert flag in help_text, f"{lesson} section mentions {flag}, which --help does not list"


def results_table():
    body = README.split("# results table: start", 1)[1].split("# results table: end", 1)[0]
    rows = {}
    for line in body.splitlines()[3:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("=").removesuffix(".py")] = [float(c) for c in cells[1:5]]
    return rows


def test_results_table_matches_the_saved_metrics():
    rows = results_table()
    assert set(rows) == set(LESSONS)
    for lesson, (loss, ref_loss, gap, seconds) in rows.items():
        m = json.loads((REPO / "results" / f"{lesson}.json").read_text())
        shown = m["dev_loss"] if lesson == "mlp_embedding" else m["loss"]
        # the table shows 6 significant digits of the losses, 3 of the gap, 2 decimals of the time
        assert loss == pytest.approx(shown, rel=1e-5) and ref_loss == pytest.approx(m["ref_loss"], rel=1e-5)
        assert gap == pytest.approx(m["gap"], rel=5e-3, abs=1e-15) and seconds == pytest.approx(m["seconds"], abs=0.01)


@pytest.mark.parametrize("lesson", ["LR_noDatasetClass", "LR_miniBatch_datasetDataLoader"])
def test_saved_metrics_are_what_the_script_prints_now(lesson):
    saved = json.loads((REPO / "results" / f"{lesson}.json").read_text())
    now = importlib.import_module(lesson).main(["--quiet", "--no-figure"])
    for key in ["loss", "ref_loss", "w", "b"]:
        assert now[key] == pytest.approx(saved[key], rel=1e-6)
    assert now["gap"] == pytest.approx(saved["gap"], rel=1e-3, abs=1e-12)


@pytest.mark.skipif(importlib.util.find_spec("pypandoc") is None, reason="pypandoc (make html installs it) is absent")
def test_export_to_html_renders_math_and_figures(tmp_path):
    import pypandoc

    html = pypandoc.convert_file(str(REPO / "README.org"), "html5", extra_args=["--standalone", "--mathml"])
    assert html.count("<math") >= 3
    for lesson in LESSONS:
        assert f'src="figs/{lesson}.png"' in html
