"""CI cannot pass with the real-component tests skipped: skip_or_fail fails under CI=true, and
scripts/setup_test_env.sh fails under CI=true when chromium or the visdom assets cannot be provided.

Every check runs in a subprocess with its own environment; the script runs with a PATH holding only stand-ins,
so it can never reach the real apt-get, sudo or npm (nothing is installed or removed).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
SETUP_SCRIPT = ROOT / "scripts" / "setup_test_env.sh"
BASH = shutil.which("bash") or "/bin/bash"
REASON = "widget server missing; install it with `apt-get install widget`"


def environment(ci: str | None, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "CHROMIUM")}
    if ci is not None:
        env["CI"] = ci
    env.update(extra)
    return env


def run_pytest(test_file: Path, ci: str | None, **extra: str) -> subprocess.CompletedProcess:
    """pytest on one file, with tests/conftest.py loaded as a plugin (its fixtures usable), skip reasons listed."""
    env = environment(ci, PYTHONPATH=os.pathsep.join([str(TESTS), str(ROOT)]), **extra)
    command = [sys.executable, "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider", "-p", "conftest",
               str(test_file)]
    return subprocess.run(command, cwd=test_file.parent, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def summary(result: subprocess.CompletedProcess) -> str:
    """pytest's last line, e.g. '1 skipped in 0.01s'."""
    return result.stdout.strip().splitlines()[-1]


# ---------------------------------------------------------------------------------------------- skip_or_fail
TINY_TEST = f"""
import pytest
from conftest import skip_or_fail


@pytest.fixture
def widget():
    skip_or_fail({REASON!r})


def test_in_body():
    skip_or_fail({REASON!r})


def test_in_fixture(widget):
    pass
"""


@pytest.mark.parametrize("ci", ["true", "TRUE"])
def test_missing_component_fails_under_ci_with_the_reason(tmp_path, ci):
    test_file = tmp_path / "test_tiny.py"
    test_file.write_text(TINY_TEST)
    result = run_pytest(test_file, ci)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert re.search(r"1 failed, 1 error", summary(result)), output
    assert output.count(REASON) >= 2, f"the failure messages should give the reason and the fix:\n{output}"
    assert "CI=true" in output


@pytest.mark.parametrize("ci", [None, "false", ""])
def test_missing_component_skips_locally_and_lists_the_reason(tmp_path, ci):
    test_file = tmp_path / "test_tiny.py"
    test_file.write_text(TINY_TEST)
    result = run_pytest(test_file, ci)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert re.match(r"2 skipped", summary(result)), output
    skip_lines = [line for line in output.splitlines() if line.startswith("SKIPPED [1]")]
    assert len(skip_lines) == 2 and all(line.endswith(REASON) for line in skip_lines), output


def test_chromium_fixture_goes_through_skip_or_fail(tmp_path):
    """The real fixture, with chromium hidden: skipped locally, a failure (setup error) under CI."""
    test_file = tmp_path / "test_needs_chromium.py"
    test_file.write_text("def test_page(chromium):\n    pass\n")
    empty_path = tmp_path / "empty_bin"
    empty_path.mkdir()
    local = run_pytest(test_file, None, PATH=str(empty_path))
    assert local.returncode == 0 and "1 skipped" in summary(local), local.stdout + local.stderr
    assert "chromium not found" in local.stdout
    ci = run_pytest(test_file, "true", PATH=str(empty_path))
    assert ci.returncode == 1 and "1 error" in summary(ci), ci.stdout + ci.stderr
    assert "chromium not found" in ci.stdout and "setup_test_env.sh" in ci.stdout


SKIP_CALLS = {"pytest.skip", "pytest.importorskip", "pytest.mark.skip"}


# A skip for a property of the machine that no install can change (not a missing component) says so on its line.
NOT_A_COMPONENT = "# skip-ok:"


def skip_calls(path: Path) -> list[int]:
    """Lines of the pytest.skip / importorskip / mark.skip calls in a file, except those marked NOT_A_COMPONENT."""
    lines = path.read_text().splitlines()
    return sorted(node.lineno for node in ast.walk(ast.parse(path.read_text()))
                  if isinstance(node, ast.Call) and ast.unparse(node.func) in SKIP_CALLS
                  and NOT_A_COMPONENT not in lines[node.lineno - 1])


def function_lines(path: Path, name: str) -> range:
    function = next(node for node in ast.walk(ast.parse(path.read_text()))
                    if isinstance(node, ast.FunctionDef) and node.name == name)
    return range(function.lineno, function.end_lineno + 1)


def test_every_skip_goes_through_skip_or_fail():
    """A bare pytest.skip / importorskip for a missing component would let CI pass with the test skipped."""
    helper = function_lines(TESTS / "conftest.py", "skip_or_fail")
    assert [line for line in skip_calls(TESTS / "conftest.py") if line in helper], "skip_or_fail does not skip"
    outside = [f"{path.name}:{line}" for path in sorted(TESTS.glob("*.py")) for line in skip_calls(path)
               if not (path.name == "conftest.py" and line in helper)]
    assert outside == [], f"route these skips through conftest.skip_or_fail: {outside}"


# ---------------------------------------------------------------------------------------------- setup_test_env.sh
def stand_in(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!{BASH}\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def fake_bin(tmp_path: Path, *, chromium: bool = False, apt_get: bool = False) -> Path:
    """A PATH folder with only the tools the script needs; chromium and apt-get only as stand-ins."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("dirname", "mktemp", "tail", "sed", "rm"):
        real = shutil.which(tool)
        assert real, f"{tool} is needed to run the script"
        (folder / tool).symlink_to(real)
    stand_in(folder, "id", 'echo 0')   # as root: the script would call apt-get itself, no sudo
    if chromium:
        stand_in(folder, "chromium", "exit 0")
    if apt_get:
        stand_in(folder, "apt-get", f'echo "apt-get $*" >> {tmp_path / "apt.log"}; '
                                     'echo "E: Unable to locate package chromium"; exit 100')
    for real_tool in ("sudo", "npm", *(() if apt_get else ("apt-get",)), *(() if chromium else ("chromium",))):
        assert shutil.which(real_tool, path=str(folder)) is None, f"{real_tool} must not be reachable"
    return folder


def fake_python(tmp_path: Path, assets_ok: bool) -> Path:
    """Stands in for `.venv/bin/python scripts/prepare_visdom_assets.py`."""
    stand_in(tmp_path, "python", f'echo "assets script called: $*"; exit {0 if assets_ok else 1}')
    return tmp_path / "python"


def run_setup(tmp_path: Path, ci: str | None, *, chromium=False, apt_get=False,
              assets_ok=True) -> subprocess.CompletedProcess:
    env = environment(ci, PATH=str(fake_bin(tmp_path, chromium=chromium, apt_get=apt_get)))
    return subprocess.run([BASH, str(SETUP_SCRIPT), str(fake_python(tmp_path, assets_ok))], env=env, check=False,
                          capture_output=True, text=True, timeout=60)


def test_setup_fails_under_ci_when_chromium_is_missing(tmp_path):
    result = run_setup(tmp_path, "true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error: chromium not found and apt-get is unavailable" in result.stderr
    assert "CI=true" in result.stderr and "missing" in result.stderr
    assert "assets script called: scripts/prepare_visdom_assets.py" in result.stdout  # still checks the rest


def test_setup_only_notes_a_missing_chromium_locally(tmp_path):
    result = run_setup(tmp_path, None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "note: chromium not found" in result.stdout and "will skip" in result.stdout
    assert "error" not in result.stderr


def test_setup_fails_under_ci_when_apt_cannot_install_chromium(tmp_path):
    result = run_setup(tmp_path, "true", apt_get=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "could not install chromium with apt" in result.stderr
    assert "Unable to locate package chromium" in result.stderr   # apt's own words are shown
    assert (tmp_path / "apt.log").read_text().splitlines()[0] == "apt-get update"


def test_setup_fails_under_ci_when_visdom_assets_cannot_be_prepared(tmp_path):
    result = run_setup(tmp_path, "true", chromium=True, assets_ok=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error: visdom assets not prepared" in result.stderr
    assert "chromium" not in result.stderr


def test_setup_passes_under_ci_when_everything_is_there(tmp_path):
    result = run_setup(tmp_path, "true", chromium=True, assets_ok=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
