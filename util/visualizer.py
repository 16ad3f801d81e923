"""Training feedback (visdom dashboard, HTML history page, loss log and plot) and test-time result pages."""

from __future__ import annotations

import html
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import requests
import visdom
from torch import Tensor

from .fileio import atomic_write
from .html import HTML
from .util import MASKS, is_empty_slot, mask2im, mkdirs, save_image, visual2im

# Seconds one dashboard request may take; visdom itself waits forever on a server that never answers.
DEFAULT_REQUEST_TIMEOUT = 5.0
_EPOCH_IMAGE = re.compile(r"^epoch(\d{3,})_(.+)\.png$")


def _image_stem(image_path: str | Path | Sequence[str | Path]) -> str:
    if isinstance(image_path, (list, tuple)):
        image_path = image_path[0]
    return Path(image_path).stem


def save_images(webpage: HTML, visuals: dict[str, Tensor], kinds: dict[str, str],
                image_path: str | Path | Sequence[str | Path], aspect_ratio: float = 1.0, width: int = 256,
                per_instance: dict[str, Tensor | None] | None = None) -> None:
    """Save the visuals of one input as ``<stem>_<visual>.png`` and add them to the page as one row.

    ``kinds`` says which visuals are images and which mask sets (the model's ``visual_names``). Every
    non-empty slot of the mask visuals that are keys of ``per_instance`` is also saved as a grey
    ``<stem>_<visual>_<k>.png``, k being the slot's id in ``per_instance[visual]`` (the number of the input
    mask file ``<stem>_<k>.png`` it came from; the slot number when the ids are None), so evaluation tools
    pair each input instance with its translation, and with its mask file, exactly.
    """
    image_dir = webpage.get_image_dir()
    page_relative = Path(os.path.relpath(image_dir, webpage.web_dir)).as_posix()
    stem = _image_stem(image_path)
    webpage.add_header(stem)
    ims, txts, links = [], [], []
    for name, tensor in visuals.items():
        sample = tensor[0] if tensor.ndim == 4 else tensor
        file_name = f"{stem}_{name}.png"
        save_image(visual2im(kinds[name], sample), image_dir / file_name, aspect_ratio)
        ims.append(f"{page_relative}/{file_name}")
        txts.append(name)
        links.append(f"{page_relative}/{file_name}")
        if per_instance and name in per_instance and kinds[name] == MASKS:
            ids = per_instance[name]
            for slot, mask in enumerate(sample):
                k = slot if ids is None else int(ids[slot])
                if not is_empty_slot(mask) and k >= 0:
                    save_image(mask2im(mask), image_dir / f"{stem}_{name}_{k}.png", aspect_ratio)
    webpage.add_images(ims, txts, links, width=width)


class _TimedVisdom(visdom.Visdom):
    """visdom client whose requests give up after ``request_timeout`` seconds and treat HTTP errors
    (e.g. another service on the port) as a failed connection."""

    def __init__(self, request_timeout: float, **kwargs):
        self.request_timeout = request_timeout  # set before visdom's constructor sends its first request
        super().__init__(**kwargs)

    def _handle_post(self, url, data=None):
        response = self.session.post(url, data={} if data is None else data, timeout=self.request_timeout)
        response.raise_for_status()
        return response.text


@contextmanager
def _quiet_visdom():
    """visdom reports set-up chatter (new session, no incoming socket) as log warnings, through a deprecated
    logging call; hide both while talking to it."""
    logger = logging.getLogger("visdom")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(previous)


def _stack_padded(images: list[np.ndarray]) -> np.ndarray:
    """uint8 (H, W, 3) images of possibly different sizes -> (N, 3, H, W), padded white to the largest."""
    height = max(image.shape[0] for image in images)
    width = max(image.shape[1] for image in images)
    grid = np.full((len(images), 3, height, width), 255, dtype=np.uint8)
    for index, image in enumerate(images):
        grid[index, :, :image.shape[0], :image.shape[1]] = image.transpose(2, 0, 1)
    return grid


class Visualizer:
    """Shows training progress: visdom dashboard (``--display_id`` > 0), ``web/index.html`` history of
    visuals, ``loss_log.txt`` and ``loss_plot.png`` under ``<checkpoints_dir>/<name>/``.

    A missing or failing visdom server never stops or stalls training: one warning, then no dashboard.
    """

    def __init__(self, opt, request_timeout: float = DEFAULT_REQUEST_TIMEOUT):
        self.opt = opt
        self.display_id = opt.display_id
        self.ncols = opt.display_ncols
        self.win_size = opt.display_winsize
        self.name = opt.name
        self.run_dir = Path(opt.checkpoints_dir) / opt.name
        self.web_dir = self.run_dir / "web"
        self.image_dir = self.web_dir / "images"
        self.log_path = self.run_dir / "loss_log.txt"
        self.plot_path = self.run_dir / "loss_plot.png"
        self.use_html = bool(opt.isTrain) and not getattr(opt, "no_html", False)
        self.history: dict = {"x": [], "losses": {}}
        self.saved = False
        self.vis: _TimedVisdom | None = None
        if self.display_id > 0:
            self.vis = self._connect(request_timeout)
        if self.use_html:
            mkdirs([self.web_dir, self.image_dir])
        if opt.isTrain:
            mkdirs(self.run_dir)
            with open(self.log_path, "a", encoding="utf-8") as log:
                log.write(f"================ Training Loss ({time.strftime('%c')}) ================\n")

    # ------------------------------------------------------------------ visdom connection
    @property
    def _server_address(self) -> str:
        return f"{self.opt.display_server}:{self.opt.display_port}"

    def _connect(self, request_timeout: float) -> _TimedVisdom | None:
        try:
            with _quiet_visdom():
                return _TimedVisdom(request_timeout, server=self.opt.display_server, port=self.opt.display_port,
                                    env=self.opt.display_env, raise_exceptions=True, use_incoming_socket=False)
        except (ConnectionError, requests.RequestException) as err:
            self._warn(f"no visdom server answers at {self._server_address} ({err}); training goes on without "
                       f"the dashboard. Start one with `python -m visdom.server -port {self.opt.display_port}` "
                       f"(offline: run `python scripts/prepare_visdom_assets.py` once first), "
                       f"or pass --display_id 0 to turn the dashboard off.")
            return None

    @staticmethod
    def _warn(message: str) -> None:
        print(f"warning: visdom: {message}", file=sys.stderr, flush=True)

    def _send(self, send_function) -> None:
        """Run one dashboard update; on a connection failure warn once and stop using the dashboard."""
        if self.vis is None:
            return
        try:
            with _quiet_visdom():
                send_function(self.vis)
        except (ConnectionError, requests.RequestException) as err:
            self.vis = None
            self._warn(f"lost the visdom server at {self._server_address} ({err}); training goes on without "
                       f"the dashboard (restart the server and resume with --continue_train to see it again).")

    def reset(self) -> None:
        """Make the next ``display_current_results`` save to the HTML page even without ``save_result``."""
        self.saved = False

    # ------------------------------------------------------------------ visuals
    def display_current_results(self, visuals: dict[str, Tensor], kinds: dict[str, str], epoch: int,
                                save_result: bool) -> None:
        """Show the first sample of every visual in one visdom grid; with ``save_result`` (or the first time
        after ``reset``) also save them as ``web/images/epoch<NNN>_<name>.png`` and rewrite ``web/index.html``."""
        images = {name: visual2im(kinds[name], tensor) for name, tensor in visuals.items()}
        if not images:
            return
        self._send(lambda vis: self._show_grid(vis, images, epoch))
        if self.use_html and (save_result or not self.saved):
            self.saved = True
            for name, image in images.items():
                save_image(image, self.image_dir / f"epoch{epoch:03d}_{name}.png")
            self._write_history_page(list(images))

    def _columns(self, count: int) -> int:
        return min(self.ncols, count) if self.ncols > 0 else count

    def _show_grid(self, vis: _TimedVisdom, images: dict[str, np.ndarray], epoch: int) -> None:
        columns = self._columns(len(images))
        vis.images(_stack_padded(list(images.values())), nrow=columns, padding=2, win=str(self.display_id),
                   opts={"title": f"{self.name} images (epoch {epoch})"})
        names = list(images)
        rows = ["".join(f"<td>{html.escape(name)}</td>" for name in names[start:start + columns])
                for start in range(0, len(names), columns)]
        table = "<table style='border-collapse:separate;border-spacing:8px'>" + "".join(
            f"<tr>{row}</tr>" for row in rows) + "</table>"
        column_width = 9 * max(len(name) for name in names) + 24   # roughly the text width, in pixels
        vis.text(table, win=str(self.display_id + 2),
                 opts={"title": f"{self.name} labels", "width": columns * column_width + 30,
                       "height": 30 * len(rows) + 50})

    def _saved_epochs(self) -> dict[int, dict[str, str]]:
        """epoch -> {visual name: file name} of the images saved so far (also by earlier, resumed runs)."""
        epochs: dict[int, dict[str, str]] = {}
        for path in self.image_dir.glob("epoch*.png"):
            match = _EPOCH_IMAGE.match(path.name)
            if match:
                epochs.setdefault(int(match.group(1)), {})[match.group(2)] = path.name
        return epochs

    def _write_history_page(self, current_names: list[str]) -> None:
        page = HTML(self.web_dir, f"Experiment name = {self.name}", refresh=30)
        for epoch, files in sorted(self._saved_epochs().items(), reverse=True):
            names = [name for name in current_names if name in files]
            names += sorted(set(files) - set(names))
            page.add_header(f"epoch [{epoch}]")
            columns = self._columns(len(names))
            for start in range(0, len(names), columns):
                chunk = names[start:start + columns]
                paths = [f"images/{files[name]}" for name in chunk]
                page.add_images(paths, chunk, paths, width=self.win_size)
        page.save()

    # ------------------------------------------------------------------ losses
    def plot_current_losses(self, epoch: int, counter_ratio: float, losses: dict[str, float]) -> None:
        """Record the losses at x = epoch + counter_ratio and redraw the dashboard's loss plot."""
        self._record(epoch + counter_ratio, losses)
        self._send(self._plot_history)

    def _record(self, x: float, losses: dict[str, float]) -> None:
        series = self.history["losses"]
        for name in losses:
            series.setdefault(name, [None] * len(self.history["x"]))
        self.history["x"].append(float(x))
        for name, values in series.items():
            values.append(float(losses[name]) if name in losses else None)

    def _history_arrays(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Loss names, x (N,) and y (N, L) with NaN where a loss was not reported."""
        names = list(self.history["losses"])
        x = np.asarray(self.history["x"], dtype=np.float64)
        y = np.array([[np.nan if v is None else v for v in self.history["losses"][name]] for name in names],
                     dtype=np.float64).T
        return names, x, y

    def _plot_history(self, vis: _TimedVisdom) -> None:
        names, x, y = self._history_arrays()
        if not names or not len(x):
            return
        vis.line(Y=y, X=np.tile(x[:, None], (1, len(names))), win=str(self.display_id + 1),
                 opts={"title": f"{self.name} loss over time", "legend": names, "xlabel": "epoch",
                       "ylabel": "loss"})

    def state_dict(self) -> dict:
        """The loss history (plain lists), for saving with the training state."""
        return {"x": list(self.history["x"]),
                "losses": {name: list(values) for name, values in self.history["losses"].items()}}

    def load_state_dict(self, state: dict) -> None:
        """Continue the loss curve of a resumed run (and redraw it on the dashboard)."""
        if not isinstance(state, dict) or "x" not in state or "losses" not in state:
            raise ValueError("Visualizer.load_state_dict: expected a dict with 'x' and 'losses' "
                             "(as returned by Visualizer.state_dict())")
        x = [float(value) for value in state["x"]]
        losses = {str(name): list(values) for name, values in state["losses"].items()}
        for name, values in losses.items():
            if len(values) != len(x):
                raise ValueError(f"Visualizer.load_state_dict: loss '{name}' has {len(values)} values for "
                                 f"{len(x)} x positions; the saved state is corrupt")
        self.history = {"x": x, "losses": losses}
        self._send(self._plot_history)

    def print_current_losses(self, epoch: int, iters: int, losses: dict[str, float], t_comp: float,
                             t_data: float) -> str:
        """Append one line to ``loss_log.txt`` and return it (the caller prints it)."""
        line = f"(epoch: {epoch}, iters: {iters}, time: {t_comp:.3f}, data: {t_data:.3f}) " + " ".join(
            f"{name}: {float(value):.3f}" for name, value in losses.items())
        mkdirs(self.run_dir)
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(line + "\n")
        return line

    def save_loss_plot(self) -> Path:
        """Draw the loss history to ``loss_plot.png`` next to ``loss_log.txt``; returns its path."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        names, x, y = self._history_arrays()
        figure = Figure(figsize=(8, 4.5), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        for column, name in enumerate(names):
            axes.plot(x, y[:, column], label=name, linewidth=1)
        if names:
            axes.legend(loc="upper right", fontsize="small", ncol=2)
        else:
            axes.text(0.5, 0.5, "no losses recorded yet", ha="center", va="center", transform=axes.transAxes)
        axes.set(xlabel="epoch", ylabel="loss", title=f"{self.name} loss over time")
        axes.grid(alpha=0.3)
        figure.tight_layout()
        return atomic_write(self.plot_path, lambda stream: figure.savefig(stream, format="png"))
