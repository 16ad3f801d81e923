"""Result pages (util.html, save_images) and the tensor -> picture conversions (util.util)."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from browser import Browser
from PIL import Image

from util.html import HTML
from util.util import IMAGE, MASKS, instance_color, mask2im, masks2im, save_image, tensor2im, visual2im
from util.visualizer import save_images

SIZE = 32


class PageStructure(HTMLParser):
    """Rows, cells (with their images and captions) and any <p> nested in a <p> of a saved page."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[dict]] = []
        self.open_tags: list[str] = []
        self.nested_paragraphs = 0
        self._in_caption = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "p" and "p" in self.open_tags:
            self.nested_paragraphs += 1
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self.rows[-1].append({"img": None, "link": None, "caption": "", "caption_after_img": False})
        elif tag == "a" and self.rows and self.rows[-1]:
            self.rows[-1][-1]["link"] = attrs.get("href")
        elif tag == "img":
            self.rows[-1][-1]["img"] = attrs.get("src")
        elif tag == "div" and attrs.get("class") == "caption":
            self._in_caption = True
            self.rows[-1][-1]["caption_after_img"] = self.rows[-1][-1]["img"] is not None
        if tag not in ("img", "meta"):
            self.open_tags.append(tag)

    def handle_endtag(self, tag):
        if tag == "div":
            self._in_caption = False
        if tag in self.open_tags:
            del self.open_tags[len(self.open_tags) - 1 - self.open_tags[::-1].index(tag)]

    def handle_data(self, data):
        if self._in_caption:
            self.rows[-1][-1]["caption"] += data



def kinds_by_suffix(visuals: dict) -> dict[str, str]:
    """InstaGAN's convention, for these tests: ``*_seg`` visuals are mask sets."""
    return {name: MASKS if name.endswith("_seg") else IMAGE for name in visuals}

def parse_page(path) -> PageStructure:
    parser = PageStructure()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def make_masks(slots: int, filled: dict[int, tuple[slice, slice]]) -> torch.Tensor:
    masks = torch.full((1, slots, SIZE, SIZE), -1.0)
    for slot, (rows, cols) in filled.items():
        masks[0, slot, rows, cols] = 1.0
    return masks


def test_each_add_images_call_is_one_row_with_captions_below_linked_images(tmp_path):
    page = HTML(tmp_path / "web", "a title")
    page.add_header("first input")
    page.add_images(["images/a.png", "images/b.png"], ["real_A_img", "fake_B_img"], ["images/a.png", "big/b.png"])
    page.add_images(["images/c d#1.png"], ["caption <with> markup"], ["images/c d#1.png"], width=128)
    path = page.save()
    assert path == tmp_path / "web" / "index.html"
    assert (tmp_path / "web" / "images").is_dir()
    structure = parse_page(path)
    assert structure.nested_paragraphs == 0
    assert [[cell["caption"] for cell in row] for row in structure.rows] == [
        ["real_A_img", "fake_B_img"], ["caption <with> markup"]]
    assert all(cell["caption_after_img"] for row in structure.rows for cell in row)
    assert structure.rows[0][1]["link"] == "big/b.png"
    assert structure.rows[1][0]["img"] == "images/c%20d%231.png"   # file names with spaces or '#' still load
    text = path.read_text()
    assert "<title>a title</title>" in text and "first input" in text and "width:128px" in text


def test_add_images_rejects_mismatched_lists(tmp_path):
    page = HTML(tmp_path, "t")
    with pytest.raises(ValueError, match="one caption and one link per image"):
        page.add_images(["a.png", "b.png"], ["only one"], ["a.png", "b.png"])


def test_refresh_adds_a_meta_refresh(tmp_path):
    assert 'http-equiv="refresh"' in HTML(tmp_path / "r", "t", refresh=5).save().read_text()
    assert "refresh" not in HTML(tmp_path / "n", "t").save().read_text()


def test_save_images_writes_each_visual_and_each_translated_instance(tmp_path):
    page = HTML(tmp_path / "web", "results")
    image = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    visuals = {
        "real_A_img": image,
        "real_A_seg": make_masks(4, {0: (slice(0, 8), slice(0, 8)), 1: (slice(16, 24), slice(16, 24))}),
        "fake_B_img": -image,
        "fake_B_seg": make_masks(4, {0: (slice(2, 10), slice(2, 10)), 2: (slice(20, 30), slice(4, 12))}),
        "rec_A_seg": make_masks(4, {0: (slice(0, 8), slice(0, 8))}),
    }
    save_images(page, visuals, kinds_by_suffix(visuals), "/data/testA/img 7.png",
                per_instance={"real_A_seg": None, "fake_B_seg": None})
    images = tmp_path / "web" / "images"
    for name in visuals:
        with Image.open(images / f"img 7_{name}.png") as picture:
            assert picture.size == (SIZE, SIZE) and picture.mode == "RGB"
    instance_files = sorted(path.name for path in images.glob("img 7_*_seg_*.png"))
    # only non-empty slots of the sets named in per_instance (input and translation), not of reconstructions
    assert instance_files == ["img 7_fake_B_seg_0.png", "img 7_fake_B_seg_2.png", "img 7_real_A_seg_0.png",
                              "img 7_real_A_seg_1.png"]
    mask = np.asarray(Image.open(images / "img 7_fake_B_seg_2.png"))
    assert mask.dtype == np.uint8 and mask.shape == (SIZE, SIZE)
    assert (mask[20:30, 4:12] == 255).all() and mask.sum() == 255 * 10 * 8
    structure = parse_page(page.save())
    assert [cell["caption"] for cell in structure.rows[0]] == list(visuals)
    assert structure.rows[0][0]["img"] == "images/img%207_real_A_img.png"


def test_save_images_can_skip_instance_files_and_takes_first_of_a_batch(tmp_path):
    page = HTML(tmp_path / "web", "results")
    batch = torch.stack([torch.full((3, SIZE, SIZE), 1.0), torch.full((3, SIZE, SIZE), -1.0)])
    visuals = {"fake_B_img": batch, "fake_B_seg": make_masks(2, {0: (slice(0, 4), slice(0, 4))})}
    save_images(page, visuals, kinds_by_suffix(visuals), ["x/first.jpg", "x/second.jpg"], aspect_ratio=2.0)
    images = tmp_path / "web" / "images"
    assert sorted(path.name for path in images.iterdir()) == ["first_fake_B_img.png", "first_fake_B_seg.png"]
    with Image.open(images / "first_fake_B_img.png") as picture:
        assert picture.size == (2 * SIZE, SIZE)   # aspect ratio 2: twice as wide
        assert picture.getpixel((0, 0)) == (255, 255, 255)   # the first sample (all +1), not the second


def test_tensor2im_maps_minus_one_to_zero_and_one_to_255():
    image = torch.tensor([-1.0, 0.0, 1.0, 1.5, -3.0]).view(1, 1, 5).expand(3, 1, 5)
    picture = tensor2im(image)
    assert picture.dtype == np.uint8 and picture.shape == (1, 5, 3)
    assert picture[0, :, 0].tolist() == [0, 128, 255, 255, 0]
    grey = tensor2im(torch.zeros(1, 1, 4, 6))   # one channel, with a batch axis
    assert grey.shape == (4, 6, 3) and (grey == 128).all()
    with pytest.raises(ValueError, match="masks2im"):
        tensor2im(torch.zeros(4, 8, 8))


def test_masks2im_colours_instances_distinctly_on_black():
    masks = make_masks(3, {0: (slice(0, 8), slice(0, 8)), 2: (slice(16, 24), slice(16, 24))})
    picture = masks2im(masks)
    assert picture.shape == (SIZE, SIZE, 3) and picture.dtype == np.uint8
    first, second = tuple(picture[4, 4]), tuple(picture[20, 20])
    assert first == instance_color(0) and second == instance_color(2) and first != second
    background = np.ones((SIZE, SIZE), dtype=bool)
    background[0:8, 0:8] = background[16:24, 16:24] = False
    assert (picture[background] == 0).all()
    assert len({instance_color(index) for index in range(20)}) == 20   # ins_max 20 at test time: all different


def test_masks2im_blends_soft_values():
    masks = torch.full((1, SIZE, SIZE), -1.0)
    masks[0, :4, :4] = 0.0    # half-confident pixels
    picture = masks2im(masks)
    expected = np.rint(np.asarray(instance_color(0)) * 0.5)
    assert np.abs(picture[0, 0].astype(int) - expected).max() <= 1


def test_mask2im_and_visual2im_dispatch_on_the_declared_kind():
    mask = torch.tensor([[-1.0, 1.0], [0.0, 1.0]])
    assert mask2im(mask).tolist() == [[0, 255], [128, 255]]
    masks = make_masks(3, {1: (slice(0, 4), slice(0, 4))})
    assert (visual2im(MASKS, masks) == masks2im(masks)).all()
    image = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    assert (visual2im(IMAGE, image) == tensor2im(image)).all()
    with pytest.raises(ValueError, match="neither"):
        visual2im("seg", masks)


def test_save_images_renders_each_visual_by_its_declared_kind_not_its_name(tmp_path):
    page = HTML(tmp_path / "web", "results")
    layout = make_masks(3, {0: (slice(0, 8), slice(0, 8))})   # 3 slots: would fail as an image
    save_images(page, {"layout": layout}, {"layout": MASKS}, "x/a.png", per_instance={"layout": None})
    picture = np.asarray(Image.open(tmp_path / "web" / "images" / "a_layout.png"))
    assert (picture == masks2im(layout)).all()
    assert (tmp_path / "web" / "images" / "a_layout_0.png").is_file()


def test_save_image_aspect_ratio_and_grey(tmp_path):
    picture = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    save_image(picture, tmp_path / "sub" / "tall.png", aspect_ratio=0.5)
    assert Image.open(tmp_path / "sub" / "tall.png").size == (SIZE, 2 * SIZE)
    save_image(np.full((4, 5), 200, dtype=np.uint8), tmp_path / "grey.png")
    with Image.open(tmp_path / "grey.png") as grey:
        assert grey.mode == "L" and grey.size == (5, 4)


def test_results_page_loads_every_image_in_chromium(tmp_path, chromium):
    page = HTML(tmp_path / "web", "results")
    for stem in ("first", "second #2"):
        image = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
        visuals = {"real_A_img": image, "real_A_seg": make_masks(2, {0: (slice(0, 8), slice(0, 8))}),
                   "fake_B_img": -image, "fake_B_seg": make_masks(2, {1: (slice(8, 16), slice(0, 8))})}
        save_images(page, visuals, kinds_by_suffix(visuals), f"/data/{stem}.png")
    path = page.save()
    with Browser(chromium) as browser:
        browser.open(path.as_uri())
        loaded = browser.evaluate("[...document.images].map(i => i.complete && i.naturalWidth > 0)")
        rows = browser.evaluate("document.querySelectorAll('tr').length")
        cells = browser.evaluate("[...document.querySelectorAll('td')].map(td => td.innerText.trim())")
    assert loaded == [True] * 8
    assert rows == 2
    assert cells == ["real_A_img", "real_A_seg", "fake_B_img", "fake_B_seg"] * 2
