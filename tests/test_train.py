import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from cli import assert_usage_error, run

from mbnas.arch.encoding import decode
from mbnas.arch.seeds import parse_arch
from mbnas.outcome import Status
from mbnas.training.protocol import Protocol, TrainConfig
from mbnas.training.proxy import proxy_arch, proxy_trainer

TINY = "stem_k3_s2_c16,ds_r1_k3_s1_c16,ir_r2_k3_s2_e3_c24,ir_r1_k3_s2_e3_c32"
FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(not FASHION.exists(),
                                   reason="Fashion-MNIST not installed "
                                          "(apt-get install dataset-fashion-mnist)")


def test_proxy_gives_only_the_first_stride_2_layer_stride_1():
    target = parse_arch("mobilenet_v2")
    proxy = proxy_arch(target, resolution=28, num_classes=10)
    assert proxy.stem.stride == 1 and proxy.stages == target.stages
    assert (proxy.resolution, proxy.num_classes) == (28, 10)
    assert proxy.output_stride == 16
    no_stem_stride = dataclasses.replace(target, stem=dataclasses.replace(target.stem, stride=1))
    proxy = proxy_arch(no_stem_stride, resolution=28, num_classes=10)
    assert [s.stride for s in proxy.stages] == [1, 1, 2, 2, 1, 2, 1]


@pytest.mark.parametrize(("adapt", "output_stride"), [("none", 32), ("stem", 16), ("first2", 8)])
def test_proxy_adaptation_gives_the_first_stride_2_layers_stride_1(adapt, output_stride):
    target = parse_arch("mobilenet_v2")
    proxy = proxy_arch(target, resolution=28, num_classes=10, adapt=adapt)
    assert proxy.output_stride == output_stride
    assert [s.repeats for s in proxy.stages] == [s.repeats for s in target.stages]


def test_proxy_resolution_resizes_every_split_once():
    from mbnas.training.proxy import load_data

    protocol = Protocol(dataset="synthetic", subset=None, val_size=200,
                        train=TrainConfig(epochs=1, batch_size=32, threads=1,
                                          proxy_resolution=24))
    data = load_data(protocol)
    assert data.size == 24 and data.val.images.shape[-2:] == data.test.images.shape[-2:] == (24, 24)
    assert data.train.images.dtype == torch.uint8
    trainer = proxy_trainer(decode(TINY), protocol)
    assert trainer.arch.resolution == 24 and trainer.fit().status is Status.COMPLETE


def tiny_protocol(**train) -> Protocol:
    config = {"epochs": 2, "batch_size": 32, "threads": 1, "lr": 0.05, **train}
    return Protocol(dataset="synthetic", subset=None, val_size=200,
                    train=TrainConfig(**config))


def test_training_is_deterministic_on_cpu():
    results = [proxy_trainer(decode(TINY), tiny_protocol()).fit() for _ in range(2)]
    assert results[0].status is Status.COMPLETE
    assert [e.loss for e in results[0].epochs] == [e.loss for e in results[1].epochs]
    assert results[0].val_acc == results[1].val_acc


def test_skipping_a_validation_changes_nothing_but_its_figure():
    full = proxy_trainer(decode(TINY), tiny_protocol()).fit()
    quiet = proxy_trainer(decode(TINY), tiny_protocol())
    first = quiet.train_epoch(validate_every_epoch=False)
    last = quiet.train_epoch()
    assert math.isnan(first.val_acc) and first.loss == full.epochs[0].loss
    assert (last.loss, last.val_acc) == (full.epochs[1].loss, full.val_acc)


def test_a_different_seed_gives_a_different_run():
    a = proxy_trainer(decode(TINY), tiny_protocol(seed=0)).fit()
    b = proxy_trainer(decode(TINY), tiny_protocol(seed=1)).fit()
    assert [e.loss for e in a.epochs] != [e.loss for e in b.epochs]


def test_nan_loss_ends_as_diverged_not_a_crash():
    result = proxy_trainer(decode(TINY), tiny_protocol(lr=1e30)).fit()
    assert result.status is Status.DIVERGED and "loss became" in result.error
    assert result.val_acc == 0.0


def test_resume_from_a_checkpoint_continues_exactly():
    full = proxy_trainer(decode(TINY), tiny_protocol(epochs=2)).fit()
    first = proxy_trainer(decode(TINY), tiny_protocol(epochs=2))
    first.train_epoch()
    state = first.state_dict()
    second = proxy_trainer(decode(TINY), tiny_protocol(epochs=2))
    second.load_state_dict(state)
    resumed = second.fit()
    assert [e.epoch for e in resumed.epochs] == [2]
    assert resumed.epochs[0].loss == pytest.approx(full.epochs[1].loss, rel=1e-6)


@needs_fashion
def test_a_tiny_spec_learns_fashion_mnist():
    protocol = Protocol(subset=3000, val_size=1000,
                        train=TrainConfig(epochs=3, batch_size=64, lr=0.2, threads=2))
    trainer = proxy_trainer(decode(TINY), protocol)
    result = trainer.fit()
    assert result.status is Status.COMPLETE
    assert result.val_acc > 0.6  # chance is 0.1
    assert result.epochs[-1].images_per_s > 0


@needs_fashion
def test_train_command_saves_checkpoint_and_metrics(tmp_path):
    out = tmp_path / "train"
    result = run("train", TINY, "--epochs", "1", "--subset", "1000", "--threads", "2",
                 "--out", str(out))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "complete" and 0.1 < metrics["val_acc"] <= 1
    assert 0 < metrics["test_acc"] <= 1 and metrics["arch"].endswith(TINY.split(",")[-1])
    payload = torch.load(out / "model.pt", weights_only=True)
    assert payload["arch"] == metrics["proxy_arch"] and "classifier.weight" in payload["model"]
    assert "val acc" in result.stdout


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--dataset", "imagenet"], ["--dataset", "invalid choice"]),
        (["--dataset", "cifar10"], ["cifar10: no data folder given", "--data-dir"]),
        (["--data-dir", "/nonexistent"], ["/nonexistent", "apt-get install dataset-fashion-mnist"]),
        (["--epochs", "0"], ["--epochs"]),
        (["--subset", "-1"], ["--subset"]),
        (["--device", "tpu"], ["--device"]),
        (["--lr", "-1"], ["--lr"]),
    ],
)
def test_bad_train_input_is_one_line_and_exit_2(tmp_path, args, needles):
    result = run("train", TINY, "--out", str(tmp_path / "out"), *args)
    assert_usage_error(result, *needles)
    assert not (tmp_path / "out").exists()


def test_cuda_asked_without_a_gpu_is_a_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = run("train", TINY, "--dataset", "synthetic", "--device", "cuda")
    assert_usage_error(result, "no CUDA GPU is visible")


def test_folder_data_set_trains(tmp_path):
    from PIL import Image

    for split, n in (("train", 24), ("test", 8)):
        for label, colour in enumerate([(255, 0, 0), (0, 0, 255)]):
            folder = tmp_path / "data" / split / f"class{label}"
            folder.mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (20, 20), tuple(min(255, c + i) for c in colour)).save(
                    folder / f"{i}.png")
    result = run("train", TINY, "--dataset", "folder", "--data-dir", str(tmp_path / "data"),
                 "--epochs", "1", "--batch-size", "8", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
