"""Converter for the authors' checkpoints: key mapping, CLI round trip to identical outputs, clear errors."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from models.networks import SetPatchDiscriminator, SetResnetGenerator
from scripts import convert_authors_checkpoint as converter

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parent.parent
SIZES = ["--ngf", "4", "--n_blocks_G", "1", "--ndf", "4", "--n_layers_D", "2"]


def make_nets(seed: int) -> dict[str, torch.nn.Module]:
    torch.manual_seed(seed)
    nets = {}
    for direction in "AB":
        nets[f"G_{direction}"] = SetResnetGenerator(ngf=4, n_blocks=1)
        discriminator = SetPatchDiscriminator(ndf=4, n_layers=2)
        discriminator(torch.rand(1, 3, 32, 32), torch.rand(1, 2, 32, 32))  # a power-iteration step moves u, v
        nets[f"D_{direction}"] = discriminator
    return {name: net.eval() for name, net in nets.items()}


def sample_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(2, 3, 32, 32, generator=generator) * 2 - 1
    masks = torch.full((2, 3, 32, 32), -1.0)
    masks[0, 0, 4:20, 6:18] = 1
    masks[0, 2, 10:30, 12:28] = 1
    masks[1, 1, 0:12, 0:32] = 1
    return image, masks


@torch.no_grad()
def outputs(net: torch.nn.Module) -> list[torch.Tensor]:
    result = net(*sample_inputs())
    return list(result) if isinstance(result, tuple) else [result]


def authors_layout(name: str, net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What the authors' code would have saved, including PyTorch-0.4-era instance-norm statistics."""
    state = net.state_dict()
    if name.startswith("G"):
        state["encoder_img.2.running_mean"] = torch.zeros(4)
        state["encoder_img.2.running_var"] = torch.ones(4)
        return state
    state = converter.to_authors_discriminator_state(state)
    state["feature_img.3.running_mean"] = torch.zeros(8)
    state["feature_img.3.num_batches_tracked"] = torch.tensor(0)
    return state


def write_authors_checkpoints(folder: Path, nets: dict[str, torch.nn.Module], epoch: str = "latest") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, net in nets.items():
        # the legacy (pre-zip) format, as PyTorch 0.4 wrote it
        torch.save(authors_layout(name, net), folder / f"{epoch}_net_{name}.pth", _use_new_zipfile_serialization=False)


def test_discriminator_keys_map_to_the_authors_names_and_back():
    state = SetPatchDiscriminator(ndf=4, n_layers=2).state_dict()
    theirs = converter.to_authors_discriminator_state(state)
    assert {"feature_img.0.module.weight_bar", "feature_img.0.module.weight_u", "feature_img.0.module.weight_v",
            "feature_img.0.module.bias", "feature_seg.2.module.weight_bar", "classifier.3.module.bias"} <= set(theirs)
    assert not any("parametrizations" in key for key in theirs)
    assert theirs["feature_img.2.module.weight_u"].shape == (8,)
    assert theirs["feature_img.2.module.weight_v"].shape == (4 * 4 * 4,)
    back = converter.convert_discriminator_state(theirs)
    assert back.keys() == state.keys()
    assert all(torch.equal(back[key], state[key]) for key in state)


def test_norm_statistics_are_dropped_unless_the_network_has_them():
    state = {"encoder_img.1.weight": torch.zeros(1), "encoder_img.2.running_mean": torch.zeros(1)}
    assert set(converter.convert_generator_state(state)) == {"encoder_img.1.weight"}
    assert set(converter.convert_generator_state(state, keep=state)) == set(state)


def test_cli_round_trip_gives_identical_outputs(tmp_path):
    nets = make_nets(seed=0)
    write_authors_checkpoints(tmp_path / "authors", nets)
    result = subprocess.run(
        [sys.executable, "-m", "scripts.convert_authors_checkpoint", "--src", str(tmp_path / "authors"),
         "--dst", str(tmp_path / "ours"), *SIZES], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    for name, original in nets.items():
        loaded = SetResnetGenerator(ngf=4, n_blocks=1) if name.startswith("G") else SetPatchDiscriminator(ndf=4, n_layers=2)
        loaded.load_state_dict(torch.load(tmp_path / "ours" / f"latest_net_{name}.pth", weights_only=True))
        for mine, theirs in zip(outputs(loaded.eval()), outputs(original)):
            torch.testing.assert_close(mine, theirs, rtol=0, atol=0)


def test_files_given_one_by_one_are_written_under_the_chosen_epoch(tmp_path):
    nets = make_nets(seed=1)
    write_authors_checkpoints(tmp_path, {"G_B": nets["G_B"], "D_A": nets["D_A"]}, epoch="200")
    files = [str(tmp_path / "200_net_G_B.pth"), str(tmp_path / "200_net_D_A.pth")]
    assert converter.main(["--src", *files, "--dst", str(tmp_path / "ours"), "--epoch", "7", *SIZES]) == 0
    assert sorted(p.name for p in (tmp_path / "ours").iterdir()) == ["7_net_D_A.pth", "7_net_G_B.pth"]
    state = torch.load(tmp_path / "ours" / "7_net_D_A.pth", weights_only=True)
    assert torch.equal(state["classifier.3.parametrizations.weight.original"],
                       nets["D_A"].classifier[3].parametrizations.weight.original)


def test_wrong_ngf_gives_one_line_error_naming_the_file_and_the_option(tmp_path, capsys):
    write_authors_checkpoints(tmp_path / "authors", make_nets(seed=0))
    wrong = ["--ngf", "8", "--n_blocks_G", "1", "--ndf", "4", "--n_layers_D", "2"]
    assert converter.main(["--src", str(tmp_path / "authors"), "--dst", str(tmp_path / "ours"), *wrong]) == 1
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert "latest_net_G_A.pth" in message and "looks like --ngf 4 --n_blocks_G 1" in message


def test_wrong_discriminator_depth_names_the_likely_option(tmp_path):
    write_authors_checkpoints(tmp_path, {"D_B": make_nets(seed=0)["D_B"]})
    options = converter.parse_args(["--src", str(tmp_path), "--dst", str(tmp_path / "ours"), "--ndf", "4"])
    with pytest.raises(converter.ConversionError, match=r"latest_net_D_B\.pth .*looks like --ndf 4 --n_layers_D 2"):
        converter.convert(options)


@pytest.mark.parametrize("setup, message", [
    (lambda folder: None, "holds no latest_net_"),
    (lambda folder: torch.save([1, 2], folder / "latest_net_G_A.pth"), "expected a state dict"),
    (lambda folder: (folder / "latest_net_G_A.pth").write_bytes(b"not a checkpoint"), "cannot be read"),
])
def test_unusable_sources_give_clear_errors(tmp_path, capsys, setup, message):
    setup(tmp_path)
    assert converter.main(["--src", str(tmp_path), "--dst", str(tmp_path / "ours")]) == 1
    assert message in capsys.readouterr().err


def test_file_names_must_say_which_network(tmp_path, capsys):
    path = tmp_path / "generator.pth"
    path.write_bytes(b"")
    assert converter.main(["--src", str(path), "--dst", str(tmp_path / "ours")]) == 1
    assert "cannot tell the network" in capsys.readouterr().err
