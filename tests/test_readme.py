"""README.org is a verified course text: its code runs, its flags exist, its numbers match the scripts."""

import contextlib
import functools
import importlib
import io
import json
import re
import shlex

import numpy as np
import pytest

import common
from tests.conftest import REPO, metrics_of

README = (REPO / "README.org").read_text()
LESSONS = ["LR_noDatasetClass", "LR_miniBatch_datasetDataLoader", "LR_miniBatch_PyTorchWay", "LogReg_PyTorch",
           "softmax_classifier", "mlp_embedding", "dnn_batchnorm", "cnn_digits",
           "ddp_training", "transformer_names"]  # fmt: skip
# A block's output, as org writes it under #+RESULTS: lines that start with ": ", or, from
# org-babel-min-lines-for-block-output (10) lines on, an example block.
BLOCK = re.compile(
    r"#\+begin_src python([^\n]*)\n(.*?)#\+end_src\n"
    r"(?:\n#\+RESULTS:\n(#\+begin_example\n.*?#\+end_example\n|(?::(?: [^\n]*)?\n)*))?",
    re.S,
)
RUNNABLE = [m for m in BLOCK.finditer(README) if ":eval no" not in m.group(1)]


def printed_lines(results):
    """The lines a block printed, read back from its #+RESULTS (group 3 of BLOCK)."""
    lines = results.splitlines()
    if lines and lines[0] == "#+begin_example":
        # inside an example block org puts a comma before a line that would read as a heading or keyword
        return [re.sub(r"^(\s*),(,*(?:\*|#\+))", r"\1\2", line) for line in lines[1:-1]]
    return [line[2:] if line.startswith(": ") else line[1:] for line in lines]


@functools.cache
def block_output(source):
    """What a block prints, run as org-babel runs it: as a fresh program (one run per block for the whole suite)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "README.org", "exec"), {})
    return out.getvalue()


def test_every_python_block_either_runs_with_its_results_or_is_marked_eval_no():
    assert len(RUNNABLE) >= 4
    for block in BLOCK.finditer(README):
        assert ":eval no" in block.group(1) or block.group(3), block.group(2)[:80]


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda m: m.group(2).splitlines()[-1][:40])
def test_python_block_prints_its_results(block):
    assert block_output(block.group(2)).splitlines() == printed_lines(block.group(3))


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
    section = re.sub(r"torchrun .*?\.py", "torchrun", sections()[lesson])  # torchrun's own options come first
    mentioned = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", section))
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


def printed_block(lesson):
    """The lesson's printed output as the README shows it (between its markers), or None."""
    start = f"# output of {lesson}.py: start\n#+begin_example\n"
    if start not in README:
        return None
    return README.split(start, 1)[1].split("#+end_example\n# output: end", 1)[0]


# The text's other printouts: an example block that starts with the command a learner types.
SHOWN = re.findall(r"#\+begin_example\n\$ (python [^\n]+)\n(.*?)#\+end_example", README, re.S)


@pytest.mark.parametrize(("command", "shown"), SHOWN, ids=[command for command, _ in SHOWN])
def test_every_command_the_text_shows_prints_what_the_text_shows(command, shown, cli, tmp_path):
    """Each line under a `$ python ...` in an example block is a line the command prints now, in order
    (the time it took and where the figure went aside); such a block may leave lines out."""
    words = shlex.split(command)
    drawn = "\nfigure: " in shown  # what a script prints only as it draws (lesson 3's variants) needs the figure
    argv = [*words[2:], *(["--figs-dir", str(tmp_path)] if drawn else ["--no-figure"])]
    _, out, err = cli(importlib.import_module(words[1].removesuffix(".py")), argv)
    untimed = functools.partial(re.sub, r"in \d+\.\d+ s\b", "in ... s")
    printed = iter(untimed(out + err).splitlines())
    shown = [line for line in untimed(shown).splitlines() if not line.startswith("figure: ")]
    missing = [line for line in shown if line not in printed]  # `in` moves on through the printed lines
    assert not missing, f"{command}: not printed (in this order) now: {missing}"


@pytest.mark.parametrize("lesson", LESSONS)
def test_one_run_behind_each_lessons_numbers(lesson):
    """The results table, results/LESSON.json and the printed output the README shows all come from one run."""
    m = json.loads((REPO / "results" / f"{lesson}.json").read_text())
    loss, ref_loss, gap, seconds = results_table()[lesson]
    shown = m["dev_loss"] if lesson in ("mlp_embedding", "dnn_batchnorm", "transformer_names") else m["loss"]
    # the table shows 6 significant digits of the losses, 3 of the gap, 2 decimals of the time
    assert loss == pytest.approx(shown, rel=1e-5) and ref_loss == pytest.approx(m["ref_loss"], rel=1e-5)
    assert gap == pytest.approx(m["gap"], rel=5e-3, abs=1e-15) and seconds == pytest.approx(m["seconds"], abs=0.01)
    block = printed_block(lesson)
    if block is not None:
        assert block == (REPO / "results" / f"{lesson}.txt").read_text(), "rerun make figs, or results/make_table.py"
        # 4 decimals; lesson 9 prints 6, lessons 1 and 2 six significant digits of a loss near 10,000
        assert any(f"{shown:{form}}" in block for form in (".4f", ".6f", ".6g"))
        assert any(f"{m['seconds']:.{digits}f} s" in block for digits in (1, 2)), "time not from the same run"


def test_lesson_5_table_and_lesson_6_notes_are_the_saved_runs():
    m = json.loads((REPO / "results" / "softmax_classifier.json").read_text())
    row = next(line for line in sections()["softmax_classifier"].splitlines() if line.startswith("| defaults"))
    numbers = [float(c) for c in row.strip("|").split("|")[1:]]
    assert numbers == [round(m[k], 4) for k in ["loss", "ref_loss", "gap_nats", "dev_loss", "ref_dev_loss"]]
    m = json.loads((REPO / "results" / "mlp_embedding.json").read_text())
    notes = sections()["mlp_embedding"].split("** The figure", 1)[1]
    assert "=best model= line" in notes  # the figure's numbers are the printed run's, not retyped
    assert f"{m['ref_loss']:.3f}" in notes


def test_every_table_the_benchmarks_chapter_shows_is_the_committed_bench_output():
    """Each example block of the Benchmarks chapter is a run of lines of a file in results/bench/, which
    `python -m bench` writes: rerunning a bench without copying its table over fails here."""
    chapter = README.split("\n* Benchmarks", 1)[1].split("\n* ", 1)[0]
    blocks = re.findall(r"#\+begin_example\n(.*?)#\+end_example", chapter, re.S)
    outputs = [path.read_text() for path in (REPO / "results" / "bench").glob("*.txt")]
    assert len(blocks) >= 10
    for block in blocks:
        assert any(block in output for output in outputs), f"not in results/bench/: {block.splitlines()[0]}"


def test_lesson_5_counts_the_pairs_that_never_occur_as_the_default_run_does():
    m = metrics_of(importlib.import_module("softmax_classifier"), ["--quiet", "--no-figure"])
    text = " ".join(sections()["softmax_classifier"].split())
    assert f"{m['unseen_pairs']} of the 27 x 27 pairs never occur in the training names" in text
    assert f"{m['unseen_dev_pairs']} dev pairs never occur in training" in text


def test_lesson_4_figure_notes_are_the_default_runs_history():
    """Every number the notes under lesson 4's figure give is the default run's, at the digits shown."""
    lesson = importlib.import_module("LogReg_PyTorch")
    m = metrics_of(lesson, ["--quiet", "--no-figure"])
    w, gap, accuracy = (np.array(m["history"][k]) for k in ("w", "gap", "accuracy"))  # w from epoch 0, the rest 1
    notes = " ".join(sections()["LogReg_PyTorch"].split("** The figure", 1)[1].split("** Exercises")[0].split())
    peak = int(w.argmax())
    assert f"(=w= = {w[1]:.2f} after epoch 1)" in notes
    assert f"carries =w= on to {w[peak]:.2f} at epoch {peak} ({w[10]:.2f} at epoch 10)" in notes
    assert f"far past scikit-learn's {m['ref_w']:.2f}" in notes
    assert f"to {w[-1]:.2f} by epoch 300" in notes
    assert f"from {gap[0]:.2f} after epoch 1 to {gap.max():.2f} at epoch {gap.argmax() + 1}" in notes
    assert f"to about {gap[-1]:.0e}".replace("e-0", "e-") in notes
    reached, last_below = (
        np.argmax(accuracy >= m["ref_accuracy"]) + 1,
        np.flatnonzero(accuracy < m["ref_accuracy"])[-1] + 1,
    )
    assert (
        f"reaches scikit-learn's {m['ref_accuracy']:.2f} at epoch {reached} and stays there from epoch {last_below + 1}"
        in notes
    )
    # the one class-1 point on class 0's side of the boundary, drawn red at the top of panel (a)
    X, y = lesson.load_dataset(lesson.parse_args([]), common.generator(0))
    left = X[(y[:, 0] == 1) & (X[:, 0] < m["boundary"]), 0]
    assert len(left) == 1 and f"left of the boundary (x = {left[0]:.2f})" in notes


# What a lesson's default run gives today against results/, within the spread of the CPU kernel
# families: PyTorch's vectorized kernels (AVX-512, AVX2 or the plain build, ATEN_CPU_CAPABILITY) sum
# floats in other orders, so another CPU changes the last digits. Forcing a family does not fix every
# code path: MKL picks its matrix-product code by CPU (on an AVX-512 CPU its products are bitwise the
# same under ATEN_CPU_CAPABILITY=avx2 as under avx512), so two CPUs under one family differ too.
# Each tolerance is about ten times the largest difference between kernel families measured at seeds
# 0, 1 and 2 on every machine in results/spread/LESSON.txt (`python -m tools.spread "python
# LESSON.py" --save LESSON` adds a machine's table), and above the gap between machines; rounded up
# to 1, 2 or 5 of a power of ten: {"rel": r} for a loss or a parameter, {"abs": a} for a gap, a
# difference of two close numbers, whose relative error means nothing. The course prints every gap
# with fewer digits than these bounds keep, so a pass also means its printed digits agree.
# References computed in float64 from exact data (least squares, counts) move by less than 1e-15
# over the kernels; rel 1e-12 leaves room for numpy's own BLAS kernels, which also differ by CPU.
EXACT = {"rel": 1e-12}
FRESH = {
    # spreads: loss, ref_loss 2.2e-4 (rel 2.1e-8: the drawn data); gap 2.4e-15; w 0 (ref_w rel 3.4e-8);
    # b 3.8e-6 (rel 6.7e-7)
    "LR_noDatasetClass": {
        "loss": {"rel": 5e-7},
        "ref_loss": {"rel": 5e-7},
        "gap": {"abs": 5e-14},
        "w": {"rel": 5e-7},
        "b": {"rel": 1e-5},
    },
    # spreads: loss, ref_loss 2.2e-4 (rel 2.1e-8); gap 5.3e-10; w 0 (ref_w rel 3.4e-8); b 5.7e-6 (rel 1e-6)
    "LR_miniBatch_datasetDataLoader": {
        "loss": {"rel": 5e-7},
        "ref_loss": {"rel": 5e-7},
        "gap": {"abs": 1e-8},
        "w": {"rel": 5e-7},
        "b": {"rel": 1e-5},
    },
    # spreads (the Intel machine's, the larger): loss 2.5e-6 (rel 1.9e-10); ref_loss, ref_val_loss 1.8e-12
    # (float64 data); gap 2.0e-10; val_loss 2.5e-5 (rel 2.7e-9); w 4.0e-7 (rel 1.2e-7); b 1.6e-6 (rel 6.1e-7)
    "LR_miniBatch_PyTorchWay": {
        "loss": {"rel": 2e-9},
        "ref_loss": EXACT,
        "gap": {"abs": 2e-9},
        "val_loss": {"rel": 5e-8},
        "ref_val_loss": EXACT,
        "w": {"rel": 2e-6},
        "b": {"rel": 1e-5},
    },
    # spreads: loss 1.5e-8 (rel 4.6e-7); ref_loss 1.3e-8 (rel 4.0e-7: the drawn data); gap 6.5e-8;
    # boundary 7.3e-7 (rel 1.6e-6); accuracy 0 (a count of points: equal)
    "LogReg_PyTorch": {
        "loss": {"rel": 5e-6},
        "ref_loss": {"rel": 5e-6},
        "gap": {"abs": 1e-6},
        "accuracy": {"abs": 0},
        "boundary": {"rel": 2e-5},
    },
    # spreads: loss 1.8e-8 (rel 7.1e-9); gap 7.1e-9; gap_nats 1.8e-8; dev_loss 4.3e-8 (rel 1.8e-8);
    # ref_loss, ref_dev_loss 0 (counts); the samples are the same under every kernel family
    "softmax_classifier": {
        "loss": {"rel": 1e-7},
        "ref_loss": EXACT,
        "gap": {"abs": 1e-7},
        "gap_nats": {"abs": 2e-7},
        "dev_loss": {"rel": 2e-7},
        "ref_dev_loss": EXACT,
        "samples": None,
    },
}


@pytest.mark.parametrize("lesson", FRESH)
def test_saved_metrics_are_what_the_script_prints_now(lesson):
    """results/ (and so the README's table and printed outputs) hold what the lesson computes today,
    on any CPU: within the spread of the kernel families, at the same seed."""
    saved = json.loads((REPO / "results" / f"{lesson}.json").read_text())
    now = metrics_of(importlib.import_module(lesson), ["--quiet", "--no-figure"])
    for key, within in FRESH[lesson].items():
        if within is None:
            assert now[key] == saved[key], key
        else:
            assert now[key] == pytest.approx(saved[key], **within), f"{key}: within {within} of results/{lesson}.json"
