"""A static HTML page of image rows (results of test.py, the training history of train.py)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import dominate
from dominate import tags

from .fileio import write_text_atomic

_PAGE_STYLE = """
body { font-family: sans-serif; }
table.images { border-collapse: collapse; margin-bottom: 8px; }
table.images td { vertical-align: top; text-align: center; padding: 4px; }
table.images .caption { font-size: 13px; word-break: break-all; }
"""


def _url(path: str) -> str:
    """Percent-encode a relative path for src/href (file names may hold spaces, '#' or '?')."""
    return path if "://" in path else quote(path, safe="/")


class HTML:
    """Builds ``<web_dir>/index.html``; images go to ``<web_dir>/images`` (see ``get_image_dir``)."""

    def __init__(self, web_dir: str | Path, title: str, refresh: int = 0):
        self.web_dir = Path(web_dir)
        self.title = title
        self.image_dir = self.web_dir / "images"
        self.image_dir.mkdir(parents=True, exist_ok=True)
        self.doc = dominate.document(title=title)
        with self.doc.head:
            tags.meta(charset="utf-8")
            if refresh > 0:
                tags.meta(http_equiv="refresh", content=str(refresh))
            tags.style(_PAGE_STYLE)

    def get_image_dir(self) -> Path:
        """The folder for the page's images; pass paths relative to the page (``images/<file>``) to add_images."""
        return self.image_dir

    def add_header(self, text: str) -> None:
        with self.doc:
            tags.h3(text)

    def add_images(self, ims: list[str], txts: list[str], links: list[str], width: int = 256) -> None:
        """One table row: each image (relative to the page) links to ``links[i]`` with caption ``txts[i]`` below."""
        if not len(ims) == len(txts) == len(links):
            raise ValueError(f"add_images: got {len(ims)} images, {len(txts)} captions and {len(links)} links; "
                             f"pass one caption and one link per image")
        with self.doc, tags.table(cls="images"), tags.tr():
            for image, text, link in zip(ims, txts, links):
                with tags.td():
                    with tags.a(href=_url(link)):
                        tags.img(src=_url(image), style=f"width:{width}px", alt=text)
                    tags.div(text, cls="caption")

    def save(self) -> Path:
        """Write ``index.html`` (atomically, so a browser or a crash never sees half a page); returns its path."""
        return write_text_atomic(self.web_dir / "index.html", self.doc.render())
