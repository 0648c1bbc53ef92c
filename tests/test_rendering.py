"""README.org reads well wherever a learner reads it: on GitHub, typeset by pandoc, and in Emacs.

GitHub renders org files with org-ruby (Debian's package ruby-org is the same renderer), which shows
LaTeX as its source. So every formula is written as plain text, and its LaTeX goes in a
`#+begin_formula` block: org-ruby leaves such blocks out, while pandoc and Emacs typeset them.
Each renderer is tested where it is installed, and skipped with the reason where it is not.
"""

import difflib
import html
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.test_readme import LESSONS, RUNNABLE, block_output

README = (REPO / "README.org").read_text()
FORMULAS = README.count("#+begin_formula")
LATEX = re.compile(r"\\(frac|begin|end)\b|\\[\[\]()]")  # what a reader must never see as text
ORG_RUBY = 'require "org-ruby"; puts Orgmode::Parser.new(File.read(ARGV[0])).to_html'


def org_ruby_installed():
    if shutil.which("ruby") is None:
        return False
    return subprocess.run(["ruby", "-e", 'require "org-ruby"'], capture_output=True).returncode == 0


needs_org_ruby = pytest.mark.skipif(
    not org_ruby_installed(), reason="org-ruby, GitHub's org renderer, is absent (apt-get install ruby-org)"
)
needs_pandoc = pytest.mark.skipif(
    importlib.util.find_spec("pypandoc") is None, reason="pandoc is absent (make html installs pypandoc_binary)"
)


@pytest.fixture(scope="module")
def github_page():
    """README.org as GitHub renders it."""
    page = subprocess.run(["ruby", "-e", ORG_RUBY, REPO / "README.org"], capture_output=True, text=True, check=True)
    return page.stdout


def github_anchors(page):
    """The ids GitHub gives the headings of a rendered page: the heading's text in lower case, without
    punctuation, spaces turned into hyphens; a repeated one gets -1, -2, ..."""
    anchors = []
    for heading in re.findall(r"<h[1-6][^>]*>(.*?)</h[1-6]>", page, re.S):
        text = html.unescape(re.sub(r"<[^>]+>", "", heading)).strip().lower()
        anchor = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        repeats = sum(a == anchor or re.fullmatch(rf"{re.escape(anchor)}-\d+", a) is not None for a in anchors)
        anchors.append(f"{anchor}-{repeats}" if repeats else anchor)
    return anchors


def test_formulas_are_written_as_formula_blocks():
    assert FORMULAS >= 5
    outside = re.sub(r"#\+begin_formula\n.*?#\+end_formula\n", "", README, flags=re.S)
    assert not LATEX.search(re.sub(r"#\+begin_src.*?#\+end_src\n", "", outside, flags=re.S))


@needs_org_ruby
def test_github_shows_no_latex_source(github_page):
    assert not LATEX.search(github_page), LATEX.search(github_page).group()
    assert "#+begin" not in github_page.lower()


@needs_org_ruby
def test_github_shows_every_figure(github_page):
    images = re.findall(r'<img src="([^"]+)"', github_page)
    assert images == re.findall(r"\[\[file:([^\]]+\.png)\]\]", README)
    for image in images:
        assert (REPO / image).is_file(), image


@needs_org_ruby
def test_every_internal_link_on_github_reaches_a_heading(github_page):
    links = re.findall(r'href="#([^"]*)"', github_page)
    assert len(links) >= 10
    missing = set(links) - set(github_anchors(github_page))
    assert not missing, f"no heading on GitHub has the anchor of these links: {sorted(missing)}"


@pytest.fixture(scope="module")
def html_page():
    import pypandoc

    return pypandoc.convert_file(str(REPO / "README.org"), "html5", extra_args=["--standalone", "--mathml"])


@needs_pandoc
def test_html_export_typesets_every_formula(html_page):
    assert html_page.count('<math display="block"') == FORMULAS
    visible = re.sub(r"<annotation .*?</annotation>", "", html_page, flags=re.S)  # MathML keeps the source here
    assert not LATEX.search(visible)


@needs_pandoc
def test_html_export_shows_every_lessons_figure(html_page):
    for lesson in LESSONS:
        assert f'src="figs/{lesson}.png"' in html_page


@needs_pandoc
def test_every_internal_link_of_the_html_export_reaches_an_anchor(html_page):
    ids = set(re.findall(r'id="([^"]+)"', html_page))
    links = re.findall(r'href="#([^"]*)"', html_page)
    assert links and not set(links) - ids, sorted(set(links) - ids)


@needs_pandoc
def test_course_md_is_what_readme_org_makes_now():
    import pypandoc

    sys.path.insert(0, str(REPO / "tools"))
    import typeset

    if pypandoc.get_pandoc_version() != typeset.PANDOC:
        pytest.skip(f"course.md is made with pandoc {typeset.PANDOC} (make html installs it)")
    assert (REPO / "course.md").read_text() == typeset.course_md(), "course.md is out of date: run make html"


def test_course_md_has_every_formula_as_math_github_typesets():
    md = (REPO / "course.md").read_text()
    assert md.count("``` math") == FORMULAS
    assert "<div" not in md and "#+" not in md


def test_every_internal_link_of_course_md_reaches_a_heading():
    md = (REPO / "course.md").read_text()
    prose = re.sub(r"^ *```.*?^ *```", "", md, flags=re.S | re.M)
    headings = "".join(
        f"<h1>{line.lstrip('#').strip().replace('`', '')}</h1>" for line in prose.splitlines() if line.startswith("#")
    )
    links = re.findall(r"\]\(#([^)]*)\)", prose)
    assert links and not set(links) - set(github_anchors(headings))


needs_emacs = pytest.mark.skipif(shutil.which("emacs") is None, reason="Emacs is absent")

# Emacs on a copy of README.org: {before} (the exports, with babel off: only the text), then
# re-running every block (org-babel-execute-buffer) and saving the file. A sh block is never run, as
# every one is marked :eval no; {python} says how a python block runs.
EMACS = """
(require 'org)
(require 'ob-python)
(require 'json)
(setq org-confirm-babel-evaluate nil org-export-use-babel nil)
{python}
(find-file {readme})
{before}
(org-babel-execute-buffer)
(save-buffer)
"""


def emacs(folder, text, python, before=""):
    """The text of README.org as Emacs leaves it after re-running every block of a copy in `folder`."""
    copy = folder / "README.org"
    copy.write_text(text)
    script = folder / "emacs.el"
    script.write_text(EMACS.format(python=python, readme=json.dumps(str(copy)), before=before))
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # the blocks import the lessons, as from the repository
    done = subprocess.run(["emacs", "--batch", "-Q", "-l", str(script)], cwd=folder, env=env, capture_output=True)
    errors = [line for line in done.stderr.decode(errors="replace").splitlines() if "error" in line.lower()]
    assert done.returncode == 0, "Emacs stopped: " + "\n".join(errors[-3:])
    return copy.read_text()


def assert_same_text(now, before):
    diff = difflib.unified_diff(before.splitlines(), now.splitlines(), "README.org", "after Emacs", lineterm="", n=1)
    assert now == before, "\n".join(list(diff)[:40])


@pytest.fixture(scope="module")
def emacs_run(tmp_path_factory):
    """(README.org after Emacs re-ran its blocks, its HTML export, its LaTeX export): one Emacs for all three.

    org-babel runs each python block through org-babel-execute:python; here that hands back the
    block's output from a run in this process (tests/test_readme.py runs the same ones), in order,
    and org writes it under the block as it writes any result."""
    folder = tmp_path_factory.mktemp("emacs")
    (folder / "outputs.json").write_text(json.dumps([block_output(m.group(2)) for m in RUNNABLE]))
    python = (
        '(defvar readme-outputs (append (json-read-file "outputs.json") nil))\n'
        "(advice-add 'org-babel-execute:python :override (lambda (&rest _) (pop readme-outputs)))"
    )
    after = emacs(folder, README, python, before="(org-html-export-to-html)\n(org-latex-export-to-latex)")
    return after, (folder / "README.html").read_text(), (folder / "README.tex").read_text()


@needs_emacs
def test_emacs_writes_every_blocks_results_as_they_stand(emacs_run):
    """Each block's output, written under it by org itself, is what README.org shows there: the same lines
    in the same form (org's ": " lines, or an example block from 10 lines on)."""
    assert_same_text(emacs_run[0], README)


@pytest.mark.slow
@needs_emacs
def test_emacs_running_every_block_leaves_readme_unchanged(tmp_path):
    """The same, with each block really run by org-babel in Python, as a reader in Emacs runs them."""
    text = (REPO / "README.org").read_text()
    assert_same_text(emacs(tmp_path, text, f"(setq org-babel-python-command {json.dumps(sys.executable)})"), text)


@needs_emacs
def test_emacs_exports_every_formula_typeset(emacs_run):
    _, page, tex = emacs_run
    assert "MathJax" in page  # it typesets the \[ ... \] in the browser
    assert len(re.findall(r'<div class="formula"[^>]*>\s*<p>\s*\\\[', page)) == FORMULAS
    assert "\\newenvironment{formula}" in tex and tex.count("\\begin{formula}") == FORMULAS
