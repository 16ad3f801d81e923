"""The training visualizer against a real visdom server (and none), the loss log/plot, the training HTML
history, and the offline visdom assets script."""

from __future__ import annotations

import argparse
import base64
import io
import json
import socket
import tarfile
import threading
import time
import uuid

import pytest
import torch
from browser import Browser
from conftest import free_port, load_asset_script, skip_or_fail, visdom_assets_missing
from PIL import Image

from util.util import IMAGE, MASKS
from util.visualizer import Visualizer

IMAGE_SIZE = 32
# (epoch, fraction of the epoch, losses); the second point lacks D_A (a skipped direction).
LOSS_POINTS = [(1, 0.25, {"G_A": 1.5, "D_A": 0.75}), (1, 0.5, {"G_A": 1.25}), (2, 0.0, {"G_A": 1.0, "D_A": 0.5})]


def make_opt(tmp_path, **overrides) -> argparse.Namespace:
    fields = {"display_id": 0, "display_server": "http://127.0.0.1", "display_port": 8097, "display_env": "main",
              "display_ncols": 4, "display_winsize": 64, "name": "experiment",
              "checkpoints_dir": str(tmp_path / "ckpt"), "isTrain": True, "no_html": False}
    return argparse.Namespace(**(fields | overrides))


def make_visuals(batch: int = 2) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator) * 2 - 1
    masks = torch.full((batch, 4, IMAGE_SIZE, IMAGE_SIZE), -1.0)
    masks[:, 0, 2:12, 2:12] = 1.0
    masks[:, 1, 18:30, 16:28] = 1.0
    return {"real_A_img": image, "real_A_seg": masks, "fake_B_img": -image, "fake_B_seg": masks.flip(-1)}


KINDS = {"real_A_img": IMAGE, "real_A_seg": MASKS, "fake_B_img": IMAGE, "fake_B_seg": MASKS}


def send_losses(visualizer: Visualizer) -> None:
    for epoch, fraction, losses in LOSS_POINTS:
        visualizer.plot_current_losses(epoch, fraction, losses)


def window(visualizer: Visualizer, win: int) -> dict:
    return json.loads(visualizer.vis.get_window_data(str(win), env=visualizer.opt.display_env))


def finishes_within(seconds: float, action) -> bool:
    """Run ``action`` in a daemon thread: True if it returned in time (a hang fails the test, never blocks it)."""
    done = threading.Event()

    def run():
        action()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done.wait(seconds)


def warnings_in(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("warning: visdom")]


@pytest.fixture
def live_visualizer(visdom_server, tmp_path) -> Visualizer:
    server, port = visdom_server
    opt = make_opt(tmp_path, display_id=1, display_server=server, display_port=port,
                   display_env=f"test_{uuid.uuid4().hex[:8]}")
    visualizer = Visualizer(opt)
    assert visualizer.vis is not None, "the visualizer did not connect to the test server"
    return visualizer


# ---------------------------------------------------------------------- with a real server
def test_loss_plot_reaches_server_with_one_line_per_loss(live_visualizer):
    send_losses(live_visualizer)
    plot = window(live_visualizer, live_visualizer.display_id + 1)
    assert plot["type"] == "plot"
    traces = {trace["name"]: trace for trace in plot["content"]["data"]}
    assert set(traces) == {"G_A", "D_A"}
    assert traces["G_A"]["x"] == [1.25, 1.5, 2.0]
    assert traces["G_A"]["y"] == [1.5, 1.25, 1.0]
    assert traces["D_A"]["y"] == [0.75, None, 0.5]   # a gap where D_A was not reported


def test_visuals_reach_server_as_one_image_grid_and_labels(live_visualizer):
    visuals = make_visuals()
    live_visualizer.display_current_results(visuals, KINDS, epoch=3, save_result=False)
    grid = window(live_visualizer, live_visualizer.display_id)
    assert grid["type"] == "image"
    prefix = "data:image/png;base64,"
    assert grid["content"]["src"].startswith(prefix)
    picture = Image.open(io.BytesIO(base64.b64decode(grid["content"]["src"][len(prefix):])))
    # four visuals of the first sample in one row of display_ncols = 4 (plus visdom's padding)
    assert picture.width >= 4 * IMAGE_SIZE and IMAGE_SIZE <= picture.height < 2 * IMAGE_SIZE
    labels = window(live_visualizer, live_visualizer.display_id + 2)
    assert all(name in labels["content"] for name in visuals)


def test_resumed_history_is_redrawn_on_the_dashboard(live_visualizer, tmp_path):
    send_losses(live_visualizer)
    state = live_visualizer.state_dict()
    resumed = Visualizer(live_visualizer.opt)
    resumed.load_state_dict(state)
    resumed.plot_current_losses(2, 0.5, {"G_A": 0.5, "D_A": 0.25})
    traces = {trace["name"]: trace for trace in window(resumed, resumed.display_id + 1)["content"]["data"]}
    assert traces["G_A"]["x"] == [1.25, 1.5, 2.0, 2.5]
    assert traces["G_A"]["y"] == [1.5, 1.25, 1.0, 0.5]


def test_lost_server_mid_run_warns_once_and_never_hangs(live_visualizer, capsys):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel accepts connections; nobody ever answers
        live_visualizer.vis.request_timeout = 1.0
        live_visualizer.vis.port = silent.getsockname()[1]

        def train_on():
            send_losses(live_visualizer)
            live_visualizer.display_current_results(make_visuals(), KINDS, epoch=1, save_result=False)

        assert finishes_within(5.0, train_on), "a dashboard that never answers stalled training"
    assert live_visualizer.vis is None
    warnings = warnings_in(capsys.readouterr().err)
    assert len(warnings) == 1 and "lost the visdom server" in warnings[0]


# ---------------------------------------------------------------------- without a server
def test_no_server_warns_once_with_the_fix_and_goes_on(tmp_path, capsys):
    port = free_port()
    started = time.monotonic()
    visualizer = Visualizer(make_opt(tmp_path, display_id=1, display_port=port))
    send_losses(visualizer)
    visualizer.display_current_results(make_visuals(), KINDS, epoch=1, save_result=True)
    assert time.monotonic() - started < 5.0
    warnings = warnings_in(capsys.readouterr().err)
    assert len(warnings) == 1
    assert f"python -m visdom.server -port {port}" in warnings[0]
    assert "--display_id 0" in warnings[0]
    assert visualizer.vis is None
    assert (tmp_path / "ckpt" / "experiment" / "web" / "index.html").is_file()  # the HTML page still works


def test_server_that_never_answers_does_not_hang(tmp_path, capsys):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        opt = make_opt(tmp_path, display_id=1, display_port=silent.getsockname()[1])
        made = []

        def start_training():
            made.append(Visualizer(opt, request_timeout=1.0))
            send_losses(made[0])

        assert finishes_within(5.0, start_training), "a server that never answers stalled the start"
    assert made[0].vis is None
    assert len(warnings_in(capsys.readouterr().err)) == 1


def test_display_id_zero_makes_no_connection_and_no_warning(tmp_path, capsys):
    visualizer = Visualizer(make_opt(tmp_path, display_id=0))
    send_losses(visualizer)
    assert visualizer.vis is None
    assert warnings_in(capsys.readouterr().err) == []


# ---------------------------------------------------------------------- logs, plot, history, state
def test_loss_log_has_header_and_one_line_per_call(tmp_path):
    visualizer = Visualizer(make_opt(tmp_path))
    line = visualizer.print_current_losses(3, 40, {"G_A": 1.23456, "D_A": torch.tensor(0.5)}, 0.1234, 0.01)
    assert line == "(epoch: 3, iters: 40, time: 0.123, data: 0.010) G_A: 1.235 D_A: 0.500"
    visualizer.print_current_losses(3, 80, {"G_A": 1.0}, 0.1, 0.0)
    lines = (tmp_path / "ckpt" / "experiment" / "loss_log.txt").read_text().splitlines()
    assert lines[0].startswith("================ Training Loss (") and str(time.localtime().tm_year) in lines[0]
    assert lines[1:] == [line, "(epoch: 3, iters: 80, time: 0.100, data: 0.000) G_A: 1.000"]


def test_save_loss_plot_writes_a_png_next_to_the_log(tmp_path):
    visualizer = Visualizer(make_opt(tmp_path))
    empty_plot = visualizer.save_loss_plot()   # before any loss: still a valid picture
    assert Image.open(empty_plot).format == "PNG"
    send_losses(visualizer)
    path = visualizer.save_loss_plot()
    assert path == tmp_path / "ckpt" / "experiment" / "loss_plot.png"
    with Image.open(path) as picture:
        assert picture.format == "PNG" and picture.width > 100 and picture.height > 100
    assert not list(path.parent.glob(".loss_plot.png.*"))   # no temporary file left behind


def test_plot_history_round_trips_through_a_weights_only_checkpoint(tmp_path):
    visualizer = Visualizer(make_opt(tmp_path))
    send_losses(visualizer)
    torch.save({"visualizer": visualizer.state_dict()}, tmp_path / "state.pth")
    state = torch.load(tmp_path / "state.pth", weights_only=True)["visualizer"]
    resumed = Visualizer(make_opt(tmp_path))
    resumed.load_state_dict(state)
    assert resumed.state_dict() == visualizer.state_dict()
    resumed.plot_current_losses(2, 0.5, {"G_A": 0.5, "D_B": 0.1})
    history = resumed.state_dict()
    assert history["x"] == [1.25, 1.5, 2.0, 2.5]
    assert history["losses"]["D_B"] == [None, None, None, 0.1]
    with pytest.raises(ValueError, match="corrupt"):
        resumed.load_state_dict({"x": [1.0], "losses": {"G_A": [1.0, 2.0]}})


def test_training_page_lists_saved_epochs_newest_first(tmp_path):
    visualizer = Visualizer(make_opt(tmp_path))
    visuals = make_visuals()
    for epoch in (1, 2):
        visualizer.display_current_results(visuals, KINDS, epoch, save_result=True)
    visualizer.display_current_results(visuals, KINDS, 3, save_result=False)   # not saved: no epoch 3 entry
    web = tmp_path / "ckpt" / "experiment" / "web"
    for epoch in (1, 2):
        for name in visuals:
            assert (web / "images" / f"epoch{epoch:03d}_{name}.png").is_file()
    page = (web / "index.html").read_text()
    assert "epoch [3]" not in page
    assert page.index("epoch [2]") < page.index("epoch [1]")


def test_no_html_writes_no_page(tmp_path):
    visualizer = Visualizer(make_opt(tmp_path, no_html=True))
    visualizer.display_current_results(make_visuals(), KINDS, 1, save_result=True)
    assert not (tmp_path / "ckpt" / "experiment" / "web").exists()


# ---------------------------------------------------------------------- offline dashboard
def test_dashboard_renders_offline_in_chromium(live_visualizer, chromium, tmp_path):
    reason = visdom_assets_missing()
    if reason:
        skip_or_fail(reason)
    send_losses(live_visualizer)
    live_visualizer.display_current_results(make_visuals(), KINDS, epoch=2, save_result=False)
    opt = live_visualizer.opt
    with Browser(chromium) as browser:
        browser.open(f"{opt.display_server}:{opt.display_port}/env/{opt.display_env}")
        browser.wait_for("document.querySelectorAll('.js-plotly-plot').length > 0 && "
                         "[...document.querySelectorAll('img.content-image')].some(i => i.naturalWidth > 0)")
        legend = browser.evaluate("[...document.querySelectorAll('.legendtext')].map(e => e.textContent)")
        text = browser.evaluate("document.body.innerText")
        browser.screenshot(tmp_path / "dashboard.png")
        external = browser.external_requests()
    assert sorted(legend) == ["D_A", "G_A"]
    assert "experiment loss over time" in text and "experiment images (epoch 2)" in text
    assert external == [], f"the dashboard fetched from outside this machine: {external}"
    assert Image.open(tmp_path / "dashboard.png").width > 0


# ---------------------------------------------------------------------- asset script
def make_fake_tarballs(folder, assets) -> None:
    """npm-pack-like tarballs holding a stub for each needed member."""
    folder.mkdir()
    members: dict[str, set[str]] = {}
    for asset in assets.ASSETS:
        members.setdefault(asset.tarball_name, set()).add(asset.member)
    for tarball, names in members.items():
        with tarfile.open(folder / tarball, "w:gz") as archive:
            for name in sorted(names):
                data = f"/* {tarball}:{name} */".encode()
                info = tarfile.TarInfo(f"package/{name}")
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))


def test_asset_script_installs_from_dir_idempotently_and_checks(tmp_path, capsys):
    assets = load_asset_script()
    static = tmp_path / "static"
    tarballs = tmp_path / "tarballs"
    make_fake_tarballs(tarballs, assets)
    assert assets.main(["--check", "--static-dir", str(static)]) == 1
    assert "missing: js/jquery.min.js" in capsys.readouterr().out
    assert assets.main(["--from-dir", str(tarballs), "--static-dir", str(static)]) == 0
    _, version = assets.installed_visdom()
    assert (static / "version.built").read_text() == version
    assert (static / "js" / "react-react.min.js").read_text() == "/* react-16.2.0.tgz:umd/react.production.min.js */"
    assert (static / "js/mathjax/2.7.5/config/TeX-AMS-MML_HTMLorMML.js").is_file()
    assert (static / "fonts" / "classnames").is_file()
    assert assets.main(["--check", "--static-dir", str(static)]) == 0
    capsys.readouterr()
    assert assets.main(["--from-dir", str(tmp_path / "nowhere"), "--static-dir", str(static)]) == 2
    assert assets.main(["--static-dir", str(static)]) == 0   # complete: needs neither npm nor tarballs
    assert "nothing to do" in capsys.readouterr().out


def test_asset_script_names_the_missing_tarball(tmp_path, capsys):
    assets = load_asset_script()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert assets.main(["--from-dir", str(empty), "--static-dir", str(tmp_path / "static")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "npm pack " in error and ".tgz is missing" in error
