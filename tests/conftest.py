"""Shared fixtures for tests that need a real visdom server or a headless chromium.

Where the machine cannot provide a real component (visdom server, chromium, visdom's offline assets) the test
goes through ``skip_or_fail``: it skips locally, with the reason and the fix, and FAILS under CI (``CI=true``),
so a CI run cannot pass with those tests silently skipped. ``scripts/setup_test_env.sh`` installs chromium
and the offline visdom assets.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import NoReturn

import pytest
from browser import find_chromium

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER_START_TIMEOUT = 30.0


def running_in_ci() -> bool:
    """True where the environment says this is a CI run (``CI=true``, as GitHub Actions and GitLab set it)."""
    return os.environ.get("CI", "").strip().lower() == "true"


def skip_or_fail(reason: str) -> NoReturn:
    """A test cannot get a real component it needs: skip locally, fail under CI (``CI=true``).

    ``reason`` says what is missing and how to provide it; it is the skip reason (listed by ``pytest -rs``)
    or the failure message."""
    if running_in_ci():
        pytest.fail(f"{reason}\n(CI=true: a test that needs a real component fails instead of skipping; "
                    f"run `bash scripts/setup_test_env.sh` in the CI job)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A localhost TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def load_asset_script():
    """scripts/prepare_visdom_assets.py as a module (its file list is the one source of truth)."""
    name = "prepare_visdom_assets"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / "prepare_visdom_assets.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the file executes
        spec.loader.exec_module(module)
    return sys.modules[name]


def visdom_assets_missing() -> str | None:
    """Why the dashboard cannot render offline (None when the assets are complete)."""
    assets = load_asset_script()
    static_dir, version = assets.installed_visdom()
    missing = assets.missing_assets(static_dir)
    if missing or not assets.version_marked(static_dir, version):
        return (f"visdom assets not prepared ({len(missing)} files missing in {static_dir}); run "
                f"`{sys.executable} scripts/prepare_visdom_assets.py`")
    return None


def _http_status(url: str) -> int | None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return None


def _stop(process: subprocess.Popen) -> None:
    """End the server and anything it started (it runs in its own session; pgid == its pid)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(5)
            return
        except subprocess.TimeoutExpired:
            continue


def _server_command(port: int, env_path: Path) -> list[str]:
    args = ["-port", str(port), "-bind_local", "-env_path", str(env_path)]
    if visdom_assets_missing() is None:
        return [sys.executable, "-m", "visdom.server", *args]
    # Without prepared assets `-m visdom.server` first downloads from CDNs (fails offline and kills the
    # server); its main() alone serves the HTTP API, which is all the API tests need.
    return [sys.executable, "-c", "from visdom.server.run_server import main; main()", *args]


@pytest.fixture(scope="session")
def visdom_server(tmp_path_factory):
    """A visdom server on a free localhost port for the whole session: yields (server URL, port)."""
    if importlib.util.find_spec("visdom") is None:
        skip_or_fail("visdom is not installed; run `bash scripts/setup_env.sh --test`")
    port = free_port()
    work_dir = tmp_path_factory.mktemp("visdom")
    log_path = work_dir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(_server_command(port, work_dir / "env"), stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, cwd=work_dir, start_new_session=True)
    try:
        reason = _wait_until_serving(process, port, log_path)
        if reason:
            skip_or_fail(reason)
        yield "http://127.0.0.1", port
    finally:
        _stop(process)


def _wait_until_serving(process: subprocess.Popen, port: int, log_path: Path) -> str | None:
    """None once GET / answers 200, else why the server is not usable."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    status = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = "\n".join(log_path.read_text(errors="replace").strip().splitlines()[-8:])
            return f"visdom server exited with code {process.returncode}:\n{tail}"
        status = _http_status(f"http://127.0.0.1:{port}/")
        if status == 200:
            return None
        if status == 403:
            return "visdom page answers 403: tornado 6.6 breaks visdom 0.2.4; install 'tornado<6.6'"
        time.sleep(0.1)
    return f"visdom server did not answer GET / with 200 within {SERVER_START_TIMEOUT:.0f} s (last: {status})"


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a headless-capable chromium binary."""
    path = find_chromium()
    if path is None:
        skip_or_fail("chromium not found on PATH (or $CHROMIUM); run `bash scripts/setup_test_env.sh`, "
                     "which installs Debian's chromium with apt")
    return path
