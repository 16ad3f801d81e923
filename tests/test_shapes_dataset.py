"""The built-in shapes dataset: format, determinism, content, ground truth and the skip/force behaviour."""

import hashlib
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datasets.make_shapes_dataset import (
    ShapeObject,
    in_domain_angle,
    in_domain_references,
    main,
    make_shapes_dataset,
    swap_kind,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = {"size": 32, "n_train": 4, "n_test": 2}


def all_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def load_mask(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def grow(mask: np.ndarray, radius: int) -> np.ndarray:
    grown = mask.copy()
    for _ in range(radius):
        padded = np.pad(grown, 1)
        grown = np.zeros_like(mask)
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                grown |= padded[dy:dy + mask.shape[0], dx:dx + mask.shape[1]]
    return grown


def objects_with_masks(root: Path, meta: dict, domain: str):
    """(image, object record, boolean mask) for every object of the train phase of `domain`."""
    for record in meta["phases"]["train"][domain]:
        image = np.asarray(Image.open(root / record["image"])).astype(float)
        for obj in record["objects"]:
            yield image, obj, load_mask(root / obj["mask"]) == 255


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes") / "shapes"
    summary = make_shapes_dataset(root, size=64, n_train=24, n_test=4, seed=3, min_objects=1, max_objects=3)
    meta = json.loads((root / "shapes_meta.json").read_text())
    return root, summary, meta


def test_same_seed_gives_identical_files(tmp_path):
    make_shapes_dataset(tmp_path / "one", seed=5, **TINY)
    make_shapes_dataset(tmp_path / "two", seed=5, **TINY)
    first, second = all_files(tmp_path / "one"), all_files(tmp_path / "two")
    assert first.keys() == second.keys()
    assert first == second
    assert {"testA_target/00000.png", "testB_target/00001.png", "testA_target_seg/00000_0.png"} <= first.keys()


def test_different_seed_gives_different_images(tmp_path):
    make_shapes_dataset(tmp_path / "one", seed=0, **TINY)
    make_shapes_dataset(tmp_path / "two", seed=1, **TINY)
    for folder in ("trainA", "trainB", "testA", "testB"):
        first = all_files(tmp_path / "one" / folder)
        second = all_files(tmp_path / "two" / folder)
        assert all(first[name] != second.get(name) for name in first)


def test_worker_count_does_not_change_files(tmp_path):
    make_shapes_dataset(tmp_path / "serial", workers=1, **TINY)
    make_shapes_dataset(tmp_path / "parallel", workers=2, **TINY)
    assert all_files(tmp_path / "serial") == all_files(tmp_path / "parallel")


def test_layout_matches_spec_format(dataset):
    root, _, meta = dataset
    for phase, count in (("train", 24), ("test", 4)):
        for domain in "AB":
            images = sorted((root / f"{phase}{domain}").iterdir())
            assert len(images) == count
            masks = {p.name for p in (root / f"{phase}{domain}_seg").iterdir()}
            expected_masks = set()
            for image_path in images:
                assert image_path.suffix == ".png"
                with Image.open(image_path) as image:
                    assert image.mode == "RGB" and image.size == (64, 64)
                n = len([m for m in masks if re.fullmatch(rf"{image_path.stem}_\d+\.png", m)])
                assert 1 <= n <= 3
                expected_masks |= {f"{image_path.stem}_{k}.png" for k in range(n)}
            assert masks == expected_masks  # numbered 0..n-1, no stray files
            assert {r["n_objects"] for r in meta["phases"][phase][domain]} <= {1, 2, 3}


def test_every_object_count_between_min_and_max_occurs(tmp_path):
    make_shapes_dataset(tmp_path / "d", size=32, n_train=30, n_test=1, min_objects=2, max_objects=4)
    meta = json.loads((tmp_path / "d" / "shapes_meta.json").read_text())
    for domain in "AB":
        counts = [r["n_objects"] for r in meta["phases"]["train"][domain]]
        assert set(counts) == {2, 3, 4}
        for record in meta["phases"]["train"][domain]:
            name = record["name"]
            assert len(list((tmp_path / "d" / f"train{domain}_seg").glob(f"{name}_*.png"))) == record["n_objects"]


def test_images_without_objects_when_min_objects_is_zero(tmp_path):
    make_shapes_dataset(tmp_path / "d", size=32, n_train=12, n_test=1, min_objects=0, max_objects=1)
    meta = json.loads((tmp_path / "d" / "shapes_meta.json").read_text())
    empty = [r["name"] for r in meta["phases"]["train"]["A"] if r["n_objects"] == 0]
    assert empty
    assert not list((tmp_path / "d" / "trainA_seg").glob(f"{empty[0]}_*.png"))


def test_masks_are_binary_nonempty_and_disjoint(dataset):
    root, _, meta = dataset
    for phase in ("train", "test"):
        for domain in "AB":
            for record in meta["phases"][phase][domain]:
                masks = [load_mask(root / obj["mask"]) for obj in record["objects"]]
                for mask in masks:
                    assert mask.dtype == np.uint8 and mask.shape == (64, 64)
                    assert set(np.unique(mask)) == {0, 255}
                total = sum((m == 255).astype(int) for m in masks)
                assert total.max() == 1


def test_object_is_drawn_where_its_mask_is(dataset):
    root, _, meta = dataset
    for domain in "AB":
        like_inside, like_outside = [], []
        for image, obj, mask in objects_with_masks(root, meta, domain):
            core = mask & ~grow(~mask, 1)  # skip anti-aliased edge pixels
            ring = grow(mask, 4) & ~grow(mask, 2)
            colour = np.array(obj["color"], dtype=float)
            inside = np.linalg.norm(image[core] - colour, axis=1).mean()
            outside = np.linalg.norm(image[ring] - colour, axis=1).mean()
            assert inside < 40, "the object's pixels should keep its colour, up to a mild texture"
            assert outside > 2 * inside, "the background around the mask should not look like the object"
            # Pixel by pixel: closer to the object's colour than to the local background exactly on the mask.
            background = image[ring].mean(axis=0)
            looks_like_object = np.linalg.norm(image - colour, axis=2) < np.linalg.norm(image - background, axis=2)
            like_inside.append(looks_like_object[mask].mean())
            like_outside.append(looks_like_object[grow(mask, 1) & ~mask].mean())
        assert np.mean(like_inside) > 0.95 and np.mean(like_outside) < 0.03  # a one-pixel shift gives ~0.2


def test_backgrounds_are_pale_plain_and_vary_little_between_images(dataset):
    # A generator with the paper's instance norm cannot see a flat background's colour (docs/shapes_benchmark.md),
    # so the backgrounds must be reproducible from their shared look: pale, nearly grey, nearly flat.
    root, _, meta = dataset
    means = []
    for domain in "AB":
        for record in meta["phases"]["train"][domain]:
            image = np.asarray(Image.open(root / record["image"])).astype(float) / 255
            objects = np.zeros(image.shape[:2], dtype=bool)
            for obj in record["objects"]:
                objects |= load_mask(root / obj["mask"]) == 255
            background = image[~grow(objects, 2)]
            assert background.std(axis=0).max() < 0.04, record["image"]
            means.append(background.mean(axis=0))
    means = np.array(means)
    assert means.min() > 0.7 and (means.max(axis=1) - means.min(axis=1)).max() < 0.12
    assert 0.015 < means.std(axis=0).max() < 0.05  # varied, but one average colour is within ~28 dB of them


def rotated_box_fill(mask: np.ndarray, angle_deg: float) -> float:
    """Mask area over the area of its bounding box aligned with the object's own axes."""
    rows, cols = np.nonzero(mask)
    theta = math.radians(angle_deg)
    u = cols * math.cos(theta) - rows * math.sin(theta)
    v = cols * math.sin(theta) + rows * math.cos(theta)
    return mask.sum() / ((np.ptp(u) + 1) * (np.ptp(v) + 1))


def test_domain_a_has_ellipses_and_domain_b_rectangles(dataset):
    root, _, meta = dataset
    fills = {}
    for domain, kind in (("A", "ellipse"), ("B", "rectangle")):
        fills[domain] = []
        for _, obj, mask in objects_with_masks(root, meta, domain):
            assert obj["kind"] == kind
            fills[domain].append(rotated_box_fill(mask, obj["angle"]))
            # The mask's area follows the kind's formula (pi/4 w h vs w h) for the size the meta file gives.
            width, height = obj["size"]
            ideal = width * height * (math.pi / 4 if kind == "ellipse" else 1.0)
            assert mask.sum() == obj["area"]
            assert abs(mask.sum() / ideal - 1) < 0.12
    assert max(fills["A"]) < 0.86 and np.mean(fills["A"]) < 0.78  # ellipse: pi/4 = 0.785
    assert min(fills["B"]) > 0.8 and np.mean(fills["B"]) > 0.85  # rectangle: 1


def test_rectangles_are_nearly_axis_aligned_and_ellipses_turn_freely(dataset):
    _, _, meta = dataset
    rect_angles = [o["angle"] for r in meta["phases"]["train"]["B"] for o in r["objects"]]
    ellipse_angles = [o["angle"] for r in meta["phases"]["train"]["A"] for o in r["objects"]]
    assert max(abs(a) for a in rect_angles) <= 12
    assert np.ptp(ellipse_angles) > 90


def test_both_domains_share_the_area_distribution(tmp_path):
    make_shapes_dataset(tmp_path / "d", size=32, n_train=150, n_test=0)
    meta = json.loads((tmp_path / "d" / "shapes_meta.json").read_text())
    areas = {d: np.array([o["area"] for r in meta["phases"]["train"][d] for o in r["objects"]]) for d in "AB"}
    assert abs(areas["A"].mean() / areas["B"].mean() - 1) < 0.1
    for quantile in (0.1, 0.5, 0.9):
        assert abs(np.quantile(areas["A"], quantile) / np.quantile(areas["B"], quantile) - 1) < 0.2


def test_readme_and_meta_describe_the_dataset(dataset):
    root, summary, meta = dataset
    assert meta["complete"] is True
    options = {key: value for key, value in meta["options"].items() if key != "format_version"}
    assert options == {"size": 64, "n_train": 24, "n_test": 4, "seed": 3, "min_objects": 1, "max_objects": 3}
    for phase in ("train", "test"):
        for domain in "AB":
            records = meta["phases"][phase][domain]
            assert summary["counts"][phase][domain] == len(records)
            histogram = summary["instance_histogram"][phase][domain]
            assert sum(histogram.values()) == len(records)
            for n, images in histogram.items():
                assert sum(r["n_objects"] == int(n) for r in records) == images
            for record in records:
                assert record["n_objects"] == len(record["objects"])
                for obj in record["objects"]:
                    assert {"kind", "center", "size", "angle", "mask"} <= obj.keys()
    readme = (root / "README.md").read_text()
    assert "--seed 3" in readme and "--size 64" in readme  # how to regenerate
    train_a = summary["instance_histogram"]["train"]["A"]
    row = "| train | A | 24 | " + str(summary["masks"]["train"]["A"]) + " | "
    assert row + " | ".join(str(train_a.get(str(n), 0)) for n in (1, 2, 3)) + " |" in readme


def test_existing_dataset_is_skipped_and_force_regenerates(tmp_path, capsys):
    out = tmp_path / "d"
    args = ["--out", str(out), "--size", "32", "--n_train", "3", "--n_test", "1"]
    assert main(args) == 0
    image = out / "trainA" / "00000.png"
    original = image.read_bytes()
    image.write_bytes(b"tampered")
    capsys.readouterr()
    assert main(args) == 0
    assert "already holds" in capsys.readouterr().out
    assert image.read_bytes() == b"tampered"
    assert main(args + ["--force"]) == 0
    assert image.read_bytes() == original


def test_changed_options_regenerate_without_stale_files(tmp_path):
    out = tmp_path / "d"
    make_shapes_dataset(out, size=32, n_train=6, n_test=2)
    summary = make_shapes_dataset(out, size=32, n_train=3, n_test=2)
    assert not summary["skipped"]
    assert len(list((out / "trainA").iterdir())) == 3
    names = {p.name.rsplit("_", 1)[0] for p in (out / "trainB_seg").iterdir()}
    assert names == {"00000", "00001", "00002"}


def test_incomplete_dataset_is_regenerated(tmp_path):
    out = tmp_path / "d"
    make_shapes_dataset(out, **TINY)
    before = all_files(out)
    next((out / "testB_seg").iterdir()).unlink()
    assert not make_shapes_dataset(out, **TINY)["skipped"]
    assert all_files(out) == before
    next((out / "testA_target_seg").iterdir()).unlink()
    assert not make_shapes_dataset(out, **TINY)["skipped"]
    assert all_files(out) == before


def test_refuses_to_overwrite_another_dataset_without_force(tmp_path, capsys):
    out = tmp_path / "d"
    (out / "trainA").mkdir(parents=True)
    (out / "trainA" / "photo.jpg").write_bytes(b"not ours")
    assert main(["--out", str(out), "--size", "32", "--n_train", "2", "--n_test", "1"]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "trainA" / "photo.jpg").exists()
    assert main(["--out", str(out), "--size", "32", "--n_train", "2", "--n_test", "1", "--force"]) == 0
    assert sorted(p.name for p in (out / "trainA").iterdir()) == ["00000.png", "00001.png"]


@pytest.mark.parametrize("bad_args, option", [(["--min_objects", "4"], "--min_objects"),
                                              (["--size", "8"], "--size"),
                                              (["--max_objects", "40", "--size", "32"], "--max_objects")])
def test_bad_options_give_a_one_line_error(tmp_path, capsys, bad_args, option):
    assert main(["--out", str(tmp_path / "d")] + bad_args) == 2
    error = capsys.readouterr().err
    assert option in error and error.count("\n") == 1
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("entry", [["-m", "datasets.make_shapes_dataset"], ["datasets/make_shapes_dataset.py"]])
def test_command_line_entry_points(tmp_path, entry):
    out = tmp_path / "d"
    result = subprocess.run([sys.executable, *entry, "--out", str(out), "--size", "32", "--n_train", "2",
                             "--n_test", "1"], check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (out / "trainB" / "00001.png").is_file() and (out / "shapes_meta.json").is_file()


# ---------------------------------------------------------------- ground truth of the test split (format 3)

# Digests of the decoded pixels of every train and test input file (image and mask, path included) that the
# format-2 generator (commit c9f9255) wrote for size=32, n_train=6, n_test=3, seed=7. Pixels rather than PNG
# bytes, so that a different zlib build cannot fail the test; the bytes are compared run against run below.
FORMAT_2_PIXEL_DIGESTS = {"train": "d8cb7e98f1ad9c7ab4374e772cc67e2d45d323f98ef1511d597bf8fbee28b662",
                          "test": "51aa814067041dfa7327fcfc625ac29e393d5609316ddb3e6c59e59a75edb98b"}


def pixel_digest(root: Path, phase: str) -> str:
    digest = hashlib.sha256()
    for folder in (f"{phase}A", f"{phase}A_seg", f"{phase}B", f"{phase}B_seg"):
        for path in sorted((root / folder).iterdir()):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(np.asarray(Image.open(path)).tobytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def targets(tmp_path_factory):
    root = tmp_path_factory.mktemp("targets") / "shapes"
    make_shapes_dataset(root, size=64, n_train=2, n_test=24, seed=3, min_objects=1, max_objects=3)
    meta = json.loads((root / "shapes_meta.json").read_text())
    return root, meta


def target_pairs(root: Path, meta: dict, domain: str):
    """(input image, target image, [(input object, target object, input mask, target mask), ...]) per test image."""
    for record in meta["phases"]["test"][domain]:
        image = np.asarray(Image.open(root / record["image"])).astype(float)
        target = np.asarray(Image.open(root / record["target"]["image"])).astype(float)
        objects = [(obj, tobj, load_mask(root / obj["mask"]) == 255, load_mask(root / tobj["mask"]) == 255)
                   for obj, tobj in zip(record["objects"], record["target"]["objects"])]
        yield image, target, objects


def min_box_fill(mask: np.ndarray) -> float:
    """Mask area over the area of its smallest rotated bounding box (1 degree steps): ~1 for a filled rectangle,
    ~pi/4 for an ellipse. Uses no meta data."""
    rows, cols = np.nonzero(mask)
    best = math.inf
    for degrees in range(90):
        theta = math.radians(degrees)
        u = cols * math.cos(theta) - rows * math.sin(theta)
        v = cols * math.sin(theta) + rows * math.cos(theta)
        best = min(best, (np.ptp(u) + 1) * (np.ptp(v) + 1))
    return mask.sum() / best


def test_swap_rule_keeps_centre_angle_area_and_aspect():
    ellipse = ShapeObject("ellipse", (10.0, 20.0), (12.0, 6.0), 33.0)  # semi-axes (6, 3), area 18 pi
    rectangle = swap_kind(ellipse)
    assert rectangle.kind == "rectangle" and rectangle.center == ellipse.center and rectangle.angle == 33.0
    assert rectangle.size == pytest.approx((6 * math.sqrt(math.pi), 3 * math.sqrt(math.pi)))  # half-sides a*sqrt(pi)/2
    assert rectangle.size[0] * rectangle.size[1] == pytest.approx(math.pi * 6 * 3)
    assert rectangle.size[0] / rectangle.size[1] == pytest.approx(2.0)
    back = swap_kind(rectangle)
    assert back.kind == "ellipse" and back.size == pytest.approx(ellipse.size)
    upright = ShapeObject("rectangle", (5.0, 5.0), (4.0, 9.0), -7.0)
    assert math.pi / 4 * math.prod(swap_kind(upright).size) == pytest.approx(36.0)


def test_target_folders_mirror_the_test_inputs(targets):
    root, meta = targets
    for domain, kind in (("A", "rectangle"), ("B", "ellipse")):
        assert meta["targets"][domain]["images"] == f"test{domain}_target"
        assert meta["targets"][domain]["masks"] == f"test{domain}_target_seg"
        assert meta["targets"][domain]["kind"] == kind
        images = sorted(p.name for p in (root / f"test{domain}").iterdir())
        assert sorted(p.name for p in (root / f"test{domain}_target").iterdir()) == images
        assert sorted(p.name for p in (root / f"test{domain}_target_seg").iterdir()) == \
            sorted(p.name for p in (root / f"test{domain}_seg").iterdir())  # one target mask per input mask, same k
        for record in meta["phases"]["test"][domain]:
            target = record["target"]
            assert target["image"] == f"test{domain}_target/{record['name']}.png"
            assert len(target["objects"]) == record["n_objects"]
            for k, (obj, tobj) in enumerate(zip(record["objects"], target["objects"])):
                assert tobj["mask"] == f"test{domain}_target_seg/{record['name']}_{k}.png"
                assert tobj["kind"] == kind and tobj["center"] == obj["center"] and tobj["angle"] == obj["angle"]
                assert tobj["color"] == obj["color"] and tobj["texture"] == obj["texture"]
                scale = math.sqrt(math.pi) / 2 if kind == "rectangle" else 2 / math.sqrt(math.pi)
                assert tobj["size"] == pytest.approx([obj["size"][0] * scale, obj["size"][1] * scale], abs=2e-3)
                with Image.open(root / tobj["mask"]) as mask:
                    assert mask.mode == "L" and set(np.unique(np.asarray(mask))) <= {0, 255}
        assert not (root / f"train{domain}_target").exists()


def test_target_masks_have_the_other_kind_with_the_same_area(targets):
    root, meta = targets
    fills = {"A": [], "B": []}
    for domain in "AB":
        areas = []
        for _, _, objects in target_pairs(root, meta, domain):
            masks = [tmask for _, _, _, tmask in objects]
            assert sum(m.astype(int) for m in masks).max() <= 1  # disjoint
            for _, tobj, mask, tmask in objects:
                assert tmask.sum() == tobj["area"]
                if tobj["cut"]:
                    continue
                areas.append((mask.sum(), tmask.sum()))
                assert abs(tmask.sum() / mask.sum() - 1) < 0.12, tobj  # objects of ~30 px lose or gain rim pixels
                fills[domain].append(min_box_fill(tmask))
        assert len(areas) >= 30
        inputs, outputs = np.array(areas).sum(axis=0)
        assert abs(outputs / inputs - 1) < 0.03  # the same area, up to pixel rounding
    # Rectangles (targets of A) fill their smallest rotated box, ellipses (targets of B) about pi/4 of it.
    assert min(fills["A"]) > 0.8 and np.mean(fills["A"]) > 0.86
    assert max(fills["B"]) < 0.9 and np.mean(fills["B"]) < 0.81


def test_target_equals_input_outside_the_objects_and_keeps_their_colours(targets):
    root, meta = targets
    for domain in "AB":
        compared = 0
        for image, target, objects in target_pairs(root, meta, domain):
            union = np.zeros(image.shape[:2], dtype=bool)
            for _, _, mask, tmask in objects:
                union |= mask | tmask
            outside = ~grow(union, 1)  # the anti-aliased rim lies within one pixel of a mask
            assert outside.mean() > 0.5
            assert np.array_equal(image[outside], target[outside])  # the same background, exactly
            compared += int(outside.sum())
            for obj, tobj, mask, tmask in objects:
                core, tcore = mask & ~grow(~mask, 1), tmask & ~grow(~tmask, 1)
                if tcore.sum() < 4:
                    continue
                colour = np.array(obj["color"], dtype=float)
                assert np.linalg.norm(target[tcore] - colour, axis=1).mean() < 40
                assert np.linalg.norm(target[tcore].mean(axis=0) - image[core].mean(axis=0)) < 12
                ring = grow(tmask, 4) & ~grow(tmask, 2) & ~grow(union & ~tmask, 2)
                if ring.sum() >= 10:  # the target's background does not look like the object
                    assert np.linalg.norm(target[ring] - colour, axis=1).mean() > 60
        assert compared > 0


def test_train_and_test_inputs_are_the_format_2_files(tmp_path):
    make_shapes_dataset(tmp_path / "d", size=32, n_train=6, n_test=3, seed=7)
    meta = json.loads((tmp_path / "d" / "shapes_meta.json").read_text())
    assert meta["options"]["format_version"] == 3
    for phase, digest in FORMAT_2_PIXEL_DIGESTS.items():
        assert pixel_digest(tmp_path / "d", phase) == digest
    # The train files' bytes do not depend on the test split that now carries the ground truth.
    make_shapes_dataset(tmp_path / "no_test", size=32, n_train=6, n_test=0, seed=7)
    for folder in ("trainA", "trainA_seg", "trainB", "trainB_seg"):
        assert all_files(tmp_path / "d" / folder) == all_files(tmp_path / "no_test" / folder)


def test_readme_lists_the_ground_truth_and_its_rule(targets):
    root, meta = targets
    readme = (root / "README.md").read_text()
    assert "format version 3" in readme
    for folder in ("testA_target/", "testA_target_seg/", "testB_target/", "testB_target_seg/"):
        assert folder in readme
    assert "(a*sqrt(pi)/2, b*sqrt(pi)/2)" in readme and "pi*a*b" in readme
    cut = sum(o["cut"] for r in meta["phases"]["test"]["A"] for o in r["target"]["objects"])
    masks = sum(r["n_objects"] for r in meta["phases"]["test"]["A"])
    assert f"| testA_target | 24 | {masks} | {cut} |" in readme


@pytest.mark.parametrize("kind, angle, nearest", [
    ("ellipse", 57.0, 57.0), ("rectangle", 5.0, 5.0), ("rectangle", 30.0, 12.0), ("rectangle", 60.0, 78.0),
    ("rectangle", 100.0, 100.0), ("rectangle", 170.0, 170.0), ("rectangle", 140.0, 168.0),
])
def test_in_domain_angle_is_the_nearest_angle_the_training_data_draw(kind, angle, nearest):
    assert in_domain_angle(kind, angle) == pytest.approx(nearest)


def test_in_domain_bound_is_below_one_only_where_targets_take_angles_their_domain_never_draws(targets):
    root, meta = targets
    # A's targets are rectangles at the ellipses' free angles, which domain B never draws: a translator that
    # draws B's rectangles exactly still misses those; B's targets are ellipses, drawn at any angle in A.
    rotated = [tobj for r in meta["phases"]["test"]["A"] for tobj in r["target"]["objects"]
               if abs(in_domain_angle("rectangle", tobj["angle"]) - tobj["angle"]) > 20]
    assert rotated, "the fixture should have steeply rotated targets"
    bound_a, bound_b = in_domain_references(root, "A"), in_domain_references(root, "B")
    assert 0.5 < bound_a["target_mask_iou"] < 0.97 and bound_b["target_mask_iou"] == pytest.approx(1.0)
    # B's in-domain drawing is the target itself; A's upright rectangles paint corners outside both masks
    assert bound_a["target_background_psnr"] < bound_b["target_background_psnr"] - 3
    assert in_domain_references(root / "missing", "A") is None
