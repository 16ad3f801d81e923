"""The COCO, LV-MHP v1 and CCP dataset builders, run in-process on tiny fixtures in each source layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from scipy.io import savemat

from datasets import generate_ccp_dataset, generate_coco_dataset, generate_mhp_dataset

# pycocotools' decoder trips a NumPy 2 deprecation warning on every mask; it is not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

# ---------------------------------------------------------------- helpers


def box_mask(shape: tuple[int, int], rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[rows[0]:rows[1], cols[0]:cols[1]] = True
    return mask


def random_image(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def read_mask(path: Path) -> np.ndarray:
    grey = np.asarray(Image.open(path))
    assert grey.dtype == np.uint8 and grey.ndim == 2, f"{path} is not an 8-bit grey mask"
    assert set(np.unique(grey)) <= {0, 255}, f"{path} holds values other than 0 and 255"
    return grey == 255


def listing(root: Path, phase: str = "train") -> dict[str, list[str]]:
    """File names in the four folders of ``phase`` (missing folders count as empty)."""
    folders = {key: root / f"{phase}{key}" for key in ("A", "A_seg", "B", "B_seg")}
    return {key: sorted(p.name for p in f.iterdir()) if f.is_dir() else [] for key, f in folders.items()}


def assert_in_both_domains(out: Path, stem: str, mask_a: np.ndarray, mask_b: np.ndarray) -> None:
    """``stem`` is written into A with exactly ``mask_a`` and into B with exactly ``mask_b``."""
    files = listing(out)
    for domain, mask in (("A", mask_a), ("B", mask_b)):
        assert f"{stem}.png" in files[domain]
        assert [n for n in files[f"{domain}_seg"] if n.startswith(f"{stem}_")] == [f"{stem}_0.png"]
        assert np.array_equal(read_mask(out / f"train{domain}_seg" / f"{stem}_0.png"), mask)


def assert_in_neither_domain(out: Path, stem: str) -> None:
    assert not any(name.startswith(stem) for names in listing(out).values() for name in names)


def run_failing(main, argv: list[str], capsys) -> str:
    """Run a builder expected to refuse; return its stderr after checking exit code 2 and one line."""
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


# ---------------------------------------------------------------- COCO

COCO_H, COCO_W = 40, 60
PERSON, SHEEP, GIRAFFE = 1, 2, 3


def polygon(rows: tuple[int, int], cols: tuple[int, int]) -> list[list[float]]:
    (top, bottom), (left, right) = rows, cols
    return [[left, top, right, top, right, bottom, left, bottom]]


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE: run lengths over the column-major pixels, starting with a run of 0s."""
    counts, current, run = [], 0, 0
    for value in mask.flatten(order="F").astype(int):
        if value != current:
            counts.append(run)
            current, run = value, 0
        run += 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


def compressed_rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


SHEEP_BOX = ((8, 24), (10, 30))      # polygon of image 1, 320 px
SHEEP_SMALL = ((2, 5), (3, 9))        # compressed RLE of image 1, 18 px
GIRAFFE_BOX = ((10, 20), (20, 35))    # uncompressed RLE of image 2
TINY = ((30, 32), (50, 52))           # 4 px
GIRAFFE_CROWD = ((5, 35), (10, 50))  # compressed RLE crowd region of image 8


@pytest.fixture
def coco(tmp_path: Path) -> dict:
    """instances_train2017.json + images: see the per-image notes below."""
    shape = (COCO_H, COCO_W)
    anns = []

    def add(image_id: int, category: int, segmentation, iscrowd: int = 0) -> None:
        anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": category, "iscrowd": iscrowd,
                     "segmentation": segmentation, "area": 1.0, "bbox": [0, 0, 1, 1]})

    add(1, SHEEP, polygon(*SHEEP_BOX))                               # 1: two sheep (+ a person) -> A
    add(1, SHEEP, compressed_rle(box_mask(shape, *SHEEP_SMALL)))
    add(1, PERSON, polygon((0, 10), (40, 50)))
    add(2, GIRAFFE, uncompressed_rle(box_mask(shape, *GIRAFFE_BOX)))  # 2: one giraffe -> B
    add(3, SHEEP, polygon((0, 10), (0, 10)))                          # 3: sheep and giraffe -> skipped
    add(3, GIRAFFE, polygon((20, 30), (20, 30)))
    add(4, SHEEP, polygon((0, 10), (0, 10)))                          # 4: a sheep and a crowd of sheep
    add(4, SHEEP, uncompressed_rle(box_mask(shape, (20, 40), (30, 60))), iscrowd=1)
    add(5, PERSON, polygon((0, 10), (0, 10)))                         # 5: no sheep, no giraffe
    add(6, SHEEP, polygon((0, 20), (0, 20)))                          # 6: a sheep and a tiny sheep
    add(6, SHEEP, polygon(*TINY))
    add(6, SHEEP, [])                                                 #    and a malformed one
    add(7, SHEEP, polygon((0, 10), (0, 10)))                          # 7: image file missing
    add(8, GIRAFFE, compressed_rle(box_mask(shape, *GIRAFFE_CROWD)), iscrowd=1)  # 8: only a crowd of giraffes
    images_dir = tmp_path / "train2017"
    images_dir.mkdir()
    images = []
    for image_id in range(1, 9):
        name = f"{image_id:012d}.png"
        images.append({"id": image_id, "file_name": name, "height": COCO_H, "width": COCO_W})
        if image_id != 7:
            Image.fromarray(random_image(COCO_H, COCO_W, image_id)).save(images_dir / name)
    categories = [{"id": PERSON, "name": "person", "supercategory": "person"},
                  {"id": SHEEP, "name": "sheep", "supercategory": "animal"},
                  {"id": GIRAFFE, "name": "giraffe", "supercategory": "animal"}]
    annotation_file = tmp_path / "annotations" / "instances_train2017.json"
    annotation_file.parent.mkdir()
    annotation_file.write_text(json.dumps({"images": images, "annotations": anns, "categories": categories}))
    return {"annotations": annotation_file, "images": images_dir, "out": tmp_path / "sheep2giraffe"}


def coco_args(coco: dict, *extra: str) -> list[str]:
    return ["--annotations", str(coco["annotations"]), "--images", str(coco["images"]), "--out",
            str(coco["out"]), "--cat1", "sheep", "--cat2", "giraffe", *extra]


def test_coco_writes_one_mask_per_annotation_in_each_segmentation_format(coco, capsys):
    generate_coco_dataset.main(coco_args(coco, "--size", "0"))
    out = coco["out"]
    assert listing(out) == {"A": ["000000000001.png", "000000000006.png"],
                            "A_seg": ["000000000001_0.png", "000000000001_1.png",
                                      "000000000006_0.png", "000000000006_1.png"],
                            "B": ["000000000002.png"], "B_seg": ["000000000002_0.png"]}
    shape = (COCO_H, COCO_W)
    # largest first: the polygon, then the compressed RLE; the uncompressed RLE lands in B
    assert np.array_equal(read_mask(out / "trainA_seg/000000000001_0.png"), box_mask(shape, *SHEEP_BOX))
    assert np.array_equal(read_mask(out / "trainA_seg/000000000001_1.png"), box_mask(shape, *SHEEP_SMALL))
    assert np.array_equal(read_mask(out / "trainB_seg/000000000002_0.png"), box_mask(shape, *GIRAFFE_BOX))
    assert np.array_equal(np.asarray(Image.open(out / "trainA/000000000001.png")), random_image(COCO_H, COCO_W, 1))
    summary = capsys.readouterr().out
    assert "trainA (sheep): 2 images, 4 instances" in summary
    assert "shows both sheep and giraffe" in summary and "crowd" in summary and "missing" in summary
    assert "dropped 1 instance(s): malformed segmentation" in summary


@pytest.mark.parametrize(("crowd", "expected_masks"), [("ignore", 1), ("include", 2)])
def test_coco_crowd_option_keeps_the_image_with_or_without_the_crowd(coco, crowd, expected_masks):
    generate_coco_dataset.main(coco_args(coco, "--size", "0", "--crowd", crowd))
    masks = [name for name in listing(coco["out"])["A_seg"] if name.startswith("000000000004_")]
    assert len(masks) == expected_masks
    if crowd == "include":
        crowd_mask = read_mask(coco["out"] / "trainA_seg/000000000004_0.png")  # the crowd is the larger
        assert np.array_equal(crowd_mask, box_mask((COCO_H, COCO_W), (20, 40), (30, 60)))


def test_coco_crowd_include_makes_a_crowd_only_image_a_sample_with_the_crowd_as_its_mask(coco):
    """The authors' builder made every annotation of the category a mask, crowds (RLE) included."""
    generate_coco_dataset.main(coco_args(coco, "--size", "0"))
    assert_in_neither_domain(coco["out"], "000000000008")
    generate_coco_dataset.main(coco_args(coco, "--size", "0", "--crowd", "include", "--overwrite"))
    assert "000000000008.png" in listing(coco["out"])["B"]
    assert [n for n in listing(coco["out"])["B_seg"] if n.startswith("000000000008_")] == ["000000000008_0.png"]
    crowd_mask = read_mask(coco["out"] / "trainB_seg/000000000008_0.png")
    assert np.array_equal(crowd_mask, box_mask((COCO_H, COCO_W), *GIRAFFE_CROWD))


def test_coco_image_of_both_categories_goes_to_neither_domain_by_default_and_to_both_on_request(coco, capsys):
    generate_coco_dataset.main(coco_args(coco, "--size", "0"))
    assert_in_neither_domain(coco["out"], "000000000003")
    assert "--both_classes" in capsys.readouterr().out
    generate_coco_dataset.main(coco_args(coco, "--size", "0", "--both_classes", "both", "--overwrite"))
    shape = (COCO_H, COCO_W)
    assert_in_both_domains(coco["out"], "000000000003", box_mask(shape, (0, 10), (0, 10)),
                           box_mask(shape, (20, 30), (20, 30)))


def test_coco_min_area_drops_small_instances_and_instance_limits_skip_images(coco):
    generate_coco_dataset.main(coco_args(coco, "--size", "0", "--min_area", "0.005", "--max_instances", "1"))
    # 0.005 of 60x40 is 12 px: image 1 keeps both sheep (18 px) so has too many; image 6 loses its 4 px sheep
    assert listing(coco["out"])["A_seg"] == ["000000000006_0.png"]
    generate_coco_dataset.main(coco_args(coco, "--size", "0", "--min_instances", "2", "--overwrite"))
    assert listing(coco["out"])["A"] == ["000000000001.png", "000000000006.png"]
    assert listing(coco["out"])["B"] == []


def test_coco_resize_and_centre_crop_move_masks_with_the_image(coco):
    generate_coco_dataset.main(coco_args(coco, "--size", "20"))
    image = Image.open(coco["out"] / "trainA/000000000001.png")
    assert image.size == (20, 20) and image.mode == "RGB"
    # 60x40 -> 30x20 (scale 1/2), then columns 5..24: the sheep box [8,24)x[10,30) -> [4,12)x[0,10)
    mask = read_mask(coco["out"] / "trainA_seg/000000000001_0.png")
    assert np.array_equal(mask, box_mask((20, 20), (4, 12), (0, 10)))


def test_coco_phase_comes_from_the_annotation_file_name(coco):
    val_file = coco["annotations"].with_name("instances_val2017.json")
    coco["annotations"].rename(val_file)
    coco["annotations"] = val_file
    generate_coco_dataset.main(coco_args(coco, "--size", "0"))
    assert listing(coco["out"], "test")["B"] == ["000000000002.png"]
    assert not (coco["out"] / "trainA").exists()
    generate_coco_dataset.main(coco_args(coco, "--size", "0", "--phase", "sample"))
    assert listing(coco["out"], "sample")["B"] == ["000000000002.png"]


def test_coco_refuses_to_mix_with_an_earlier_build_and_overwrite_clears_stale_masks(coco, capsys):
    generate_coco_dataset.main(coco_args(coco, "--size", "0"))
    stale = coco["out"] / "trainA_seg/000000000001_7.png"
    stale.write_bytes(b"")
    err = run_failing(generate_coco_dataset.main, coco_args(coco, "--size", "0"), capsys)
    assert "--overwrite" in err
    generate_coco_dataset.main(coco_args(coco, "--size", "0", "--overwrite"))
    assert not stale.exists()
    assert (coco["out"] / "trainA_seg/000000000001_1.png").is_file()


def test_coco_unknown_category_lists_the_valid_names(coco, capsys):
    args = coco_args(coco)
    args[args.index("sheep")] = "shep"
    err = run_failing(generate_coco_dataset.main, args, capsys)
    assert "unknown category --cat1 'shep'" in err and "giraffe, person, sheep" in err


def test_coco_missing_inputs_are_one_line_errors(coco, tmp_path, capsys):
    args = coco_args(coco)
    args[args.index(str(coco["annotations"]))] = str(tmp_path / "nope.json")
    assert "--annotations" in run_failing(generate_coco_dataset.main, args, capsys)
    args = coco_args(coco)
    args[args.index(str(coco["images"]))] = str(tmp_path / "no_images")
    assert "--images" in run_failing(generate_coco_dataset.main, args, capsys)
    args = coco_args(coco)
    args[args.index(str(coco["images"]))] = str(tmp_path / "annotations")  # a folder without the images
    assert "none of the" in run_failing(generate_coco_dataset.main, args, capsys)


# ---------------------------------------------------------------- LV-MHP v1

MHP_H, MHP_W = 60, 60
PANTS, SKIRT, UPPER, HAIR = 6, 5, 4, 2


def label_map(*regions: tuple[int, tuple[int, int], tuple[int, int]]) -> np.ndarray:
    labels = np.zeros((MHP_H, MHP_W), dtype=np.uint8)
    for label, rows, cols in regions:
        labels[box_mask((MHP_H, MHP_W), rows, cols)] = label
    return labels


MHP_PERSONS = {
    "0001": [label_map((PANTS, (30, 50), (10, 20)), (UPPER, (10, 30), (10, 20))),   # -> A, three masks
             label_map((PANTS, (30, 50), (40, 50))),
             label_map((PANTS, (30, 50), (0, 6)))],                                 # cut off by a 20-wide crop
    "0002": [label_map((SKIRT, (30, 45), (20, 40))), label_map((HAIR, (0, 5), (0, 5)))],  # -> B
    "0003": [label_map((PANTS, (30, 50), (0, 10))), label_map((SKIRT, (30, 50), (30, 40)))],  # both
    "0004": [label_map((HAIR, (0, 5), (0, 5))), label_map((UPPER, (10, 20), (10, 20)))],  # neither
    "0005": [label_map((SKIRT, (20, 40), (20, 30))), label_map()],                 # RGB-saved map -> B
}


@pytest.fixture
def mhp(tmp_path: Path) -> Path:
    root = tmp_path / "LV-MHP-v1"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for number, (image_id, persons) in enumerate(MHP_PERSONS.items()):
        Image.fromarray(random_image(MHP_H, MHP_W, number)).save(root / "images" / f"{image_id}.jpg")
        for index, labels in enumerate(persons, start=1):
            saved = np.stack([labels] * 3, axis=-1) if image_id == "0005" else labels
            Image.fromarray(saved).save(root / "annotations" / f"{image_id}_{len(persons):02d}_{index:02d}.png")
    (root / "train_list.txt").write_text("0001.jpg\n0002.jpg\n0003.jpg\n0004.jpg\n")
    (root / "test_list.txt").write_text("0005.jpg\n\n")
    return root


def mhp_args(root: Path, out: Path, *extra: str) -> list[str]:
    return ["--root", str(root), "--out", str(out), *extra]


def test_mhp_gives_one_mask_per_person_wearing_the_class(mhp, tmp_path, capsys):
    out = tmp_path / "pants2skirt"
    generate_mhp_dataset.main(mhp_args(mhp, out, "--height", "0", "--width", "0"))
    assert listing(out) == {"A": ["0001.png"], "A_seg": ["0001_0.png", "0001_1.png", "0001_2.png"],
                            "B": ["0002.png"], "B_seg": ["0002_0.png"]}
    assert listing(out, "test") == {"A": [], "A_seg": [], "B": ["0005.png"], "B_seg": ["0005_0.png"]}
    shape = (MHP_H, MHP_W)
    assert np.array_equal(read_mask(out / "trainA_seg/0001_0.png"), box_mask(shape, (30, 50), (10, 20)))
    assert np.array_equal(read_mask(out / "trainA_seg/0001_1.png"), box_mask(shape, (30, 50), (40, 50)))
    assert np.array_equal(read_mask(out / "trainB_seg/0002_0.png"), box_mask(shape, (30, 45), (20, 40)))
    assert np.array_equal(read_mask(out / "testB_seg/0005_0.png"), box_mask(shape, (20, 40), (20, 30)))
    summary = capsys.readouterr().out
    assert "shows both pants and skirt" in summary and "shows neither pants nor skirt" in summary


def test_mhp_image_of_both_classes_goes_to_neither_domain_by_default_and_to_both_on_request(mhp, tmp_path):
    out = tmp_path / "pants2skirt"
    generate_mhp_dataset.main(mhp_args(mhp, out, "--height", "0", "--width", "0"))
    assert_in_neither_domain(out, "0003")
    generate_mhp_dataset.main(mhp_args(mhp, out, "--height", "0", "--width", "0", "--both_classes", "both",
                                       "--overwrite"))
    shape = (MHP_H, MHP_W)
    assert_in_both_domains(out, "0003", box_mask(shape, (30, 50), (0, 10)), box_mask(shape, (30, 50), (30, 40)))
    assert listing(out)["A"] == ["0001.png", "0003.png"] and listing(out)["B"] == ["0002.png", "0003.png"]


def test_mhp_resize_crops_the_centre_and_drops_persons_cut_off(mhp, tmp_path):
    out = tmp_path / "pants2skirt"
    generate_mhp_dataset.main(mhp_args(mhp, out, "--height", "30", "--width", "20"))
    assert Image.open(out / "trainA/0001.png").size == (20, 30)
    # 60x60 -> 30x30 (scale 1/2), then columns 5..24; the third person's pants fall outside
    assert listing(out)["A_seg"] == ["0001_0.png", "0001_1.png"]
    assert np.array_equal(read_mask(out / "trainA_seg/0001_0.png"), box_mask((30, 20), (15, 25), (0, 5)))
    assert np.array_equal(read_mask(out / "trainA_seg/0001_1.png"), box_mask((30, 20), (15, 25), (15, 20)))


def test_mhp_without_list_files_splits_by_seed(mhp, tmp_path):
    for name in ("train_list.txt", "test_list.txt"):
        (mhp / name).unlink()
    outs = [tmp_path / "first", tmp_path / "second"]
    for out in outs:
        generate_mhp_dataset.main(mhp_args(mhp, out, "--height", "0", "--width", "0", "--test_fraction", "0.4",
                                           "--seed", "3"))
    first = {phase: listing(outs[0], phase) for phase in ("train", "test")}
    assert first == {phase: listing(outs[1], phase) for phase in ("train", "test")}
    written = sorted(first["train"]["A"] + first["train"]["B"] + first["test"]["A"] + first["test"]["B"])
    assert written == ["0001.png", "0002.png", "0005.png"]


def test_mhp_errors_name_the_fix(mhp, tmp_path, capsys):
    err = run_failing(generate_mhp_dataset.main, mhp_args(mhp, tmp_path / "o", "--cat1_id", "19"), capsys)
    assert "--cat1_id 19" in err and "6 pants" in err
    err = run_failing(generate_mhp_dataset.main, mhp_args(tmp_path / "missing", tmp_path / "o"), capsys)
    assert "--root" in err
    (mhp / "test_list.txt").unlink()
    err = run_failing(generate_mhp_dataset.main, mhp_args(mhp, tmp_path / "o"), capsys)
    assert "test_list.txt" in err


# ---------------------------------------------------------------- Clothing Co-Parsing

CCP_H, CCP_W = 60, 40
CCP_NAMES = ["null", "accessories", "jeans", "skirt", "shirt"]
JEANS, CCP_SKIRT, SHIRT = 2, 3, 4


def ccp_labels(*regions: tuple[int, tuple[int, int], tuple[int, int]]) -> np.ndarray:
    labels = np.zeros((CCP_H, CCP_W), dtype=np.uint8)
    for label, rows, cols in regions:
        labels[box_mask((CCP_H, CCP_W), rows, cols)] = label
    return labels


CCP_GROUNDTRUTH = {
    "0001": ccp_labels((JEANS, (30, 55), (5, 15)), (JEANS, (30, 55), (25, 35)), (SHIRT, (10, 30), (5, 35))),
    "0002": ccp_labels((CCP_SKIRT, (30, 45), (10, 30))),
    "0003": ccp_labels((JEANS, (30, 55), (5, 15)), (CCP_SKIRT, (20, 30), (5, 35))),
    "0004": ccp_labels((SHIRT, (10, 30), (5, 35))),
}


@pytest.fixture
def ccp(tmp_path: Path) -> Path:
    root = tmp_path / "clothing-co-parsing"
    (root / "photos").mkdir(parents=True)
    (root / "annotations" / "pixel-level").mkdir(parents=True)
    for number, image_id in enumerate(["0001", "0002", "0003", "0004", "0005"]):
        Image.fromarray(random_image(CCP_H, CCP_W, number)).save(root / "photos" / f"{image_id}.jpg")
    for image_id, groundtruth in CCP_GROUNDTRUTH.items():
        savemat(root / "annotations" / "pixel-level" / f"{image_id}.mat", {"groundtruth": groundtruth})
    cells = np.empty((1, len(CCP_NAMES)), dtype=object)
    cells[0, :] = CCP_NAMES
    savemat(root / "label_list.mat", {"label_list": cells})
    return root


def test_ccp_writes_one_mask_per_image_with_all_pixels_of_the_class(ccp, tmp_path, capsys):
    out = tmp_path / "jeans2skirt"
    generate_ccp_dataset.main(["--root", str(ccp), "--out", str(out), "--height", "0", "--width", "0",
                               "--test_fraction", "0"])
    assert listing(out) == {"A": ["0001.png"], "A_seg": ["0001_0.png"], "B": ["0002.png"], "B_seg": ["0002_0.png"]}
    assert listing(out, "test") == {"A": [], "A_seg": [], "B": [], "B_seg": []}
    shape = (CCP_H, CCP_W)
    both_legs = box_mask(shape, (30, 55), (5, 15)) | box_mask(shape, (30, 55), (25, 35))
    assert np.array_equal(read_mask(out / "trainA_seg/0001_0.png"), both_legs)
    assert np.array_equal(read_mask(out / "trainB_seg/0002_0.png"), box_mask(shape, (30, 45), (10, 30)))
    summary = capsys.readouterr().out
    assert "shows both jeans and skirt" in summary and "shows neither jeans nor skirt" in summary


def test_ccp_image_of_both_classes_goes_to_neither_domain_by_default_and_to_both_on_request(ccp, tmp_path):
    out = tmp_path / "jeans2skirt"
    args = ["--root", str(ccp), "--out", str(out), "--height", "0", "--width", "0", "--test_fraction", "0"]
    generate_ccp_dataset.main(args)
    assert_in_neither_domain(out, "0003")
    generate_ccp_dataset.main([*args, "--both_classes", "both", "--overwrite"])
    shape = (CCP_H, CCP_W)
    assert_in_both_domains(out, "0003", box_mask(shape, (30, 55), (5, 15)), box_mask(shape, (20, 30), (5, 35)))


def test_ccp_split_is_seeded_and_covers_the_annotated_images(ccp, tmp_path):
    outs = [tmp_path / "first", tmp_path / "second"]
    for out in outs:
        generate_ccp_dataset.main(["--root", str(ccp), "--out", str(out), "--height", "30", "--width", "20",
                                   "--test_fraction", "0.5", "--seed", "1"])
    first = {phase: listing(outs[0], phase) for phase in ("train", "test")}
    assert first == {phase: listing(outs[1], phase) for phase in ("train", "test")}
    written = sorted(first["train"]["A"] + first["train"]["B"] + first["test"]["A"] + first["test"]["B"])
    assert written == ["0001.png", "0002.png"]
    phase = "train" if first["train"]["A"] else "test"
    assert Image.open(outs[0] / f"{phase}A/0001.png").size == (20, 30)


def test_ccp_unknown_class_lists_the_valid_names(ccp, tmp_path, capsys):
    err = run_failing(generate_ccp_dataset.main, ["--root", str(ccp), "--out", str(tmp_path / "o"),
                                                  "--cat2", "skrit"], capsys)
    assert "unknown class --cat2 'skrit'" in err and "accessories, jeans, shirt, skirt" in err
    (ccp / "label_list.mat").unlink()
    err = run_failing(generate_ccp_dataset.main, ["--root", str(ccp), "--out", str(tmp_path / "o")], capsys)
    assert "label_list.mat" in err
