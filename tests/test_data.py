"""The data layer on tiny files written here, the synthetic set, batching, and the real
Fashion-MNIST when it is installed."""

import gzip
import pickle
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mbnas.data import DATASETS, DEFAULT_DIRS, Batches, ImageSet, load_dataset
from mbnas.data._batches import crop_and_flip
from mbnas.errors import MbnasError

FASHION = Path(DEFAULT_DIRS["fashion-mnist"])


@pytest.fixture(autouse=True)
def no_env_data_dir(monkeypatch):
    monkeypatch.delenv("MBNAS_DATA", raising=False)


def one_line_error(excinfo, *needles: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


# --- tiny files ---


def tagged_images(n: int, channels: int, side: int) -> np.ndarray:
    """Random images whose first two bytes spell their index, so splits can be traced."""
    images = np.random.default_rng(n).integers(0, 256, (n, channels, side, side), dtype=np.uint8)
    images[:, 0, 0, 0], images[:, 0, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
    return images


def tags(images: torch.Tensor) -> list[int]:
    return (images[:, 0, 0, 0].long() + 256 * images[:, 0, 0, 1].long()).tolist()


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes((0, 0, 0x08, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool) -> Path:
    data = idx_bytes(array)
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def write_fashion(folder: Path, n_train: int = 50, n_test: int = 12, gz: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", tagged_images(n, 1, 28)[:, 0], gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, gz)


def write_cifar(parent: Path, name: str, per_batch: int = 6) -> Path:
    """A CIFAR folder pickled the way the real archives are: byte-string keys."""
    if name == "cifar10":
        folder, train, test = parent / "cifar-10-batches-py", [f"data_batch_{i}" for i in
                                                               range(1, 6)], "test_batch"
        meta, key, names = {b"label_names": [b"plane", b"car", b"bird"]}, b"labels", 3
        folder.mkdir(parents=True)
        _dump(folder / "batches.meta", meta)
    else:
        folder, train, test = parent / "cifar-100-python", ["train"], "test"
        key, names = b"fine_labels", 100
        folder.mkdir(parents=True)
        _dump(folder / "meta", {b"fine_label_names": [f"c{i}".encode() for i in range(100)],
                                b"coarse_label_names": [b"x"] * 20})
    for i, file in enumerate([*train, test]):
        images = tagged_images(per_batch, 3, 32) + i  # differ between batches
        _dump(folder / file, {b"data": images.reshape(per_batch, -1),
                              key: [(i + j) % names for j in range(per_batch)],
                              b"batch_label": file.encode()})
    return folder


def _dump(path: Path, obj) -> None:
    with path.open("wb") as file:
        pickle.dump(obj, file, protocol=2)


def write_png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (20, 12)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


# --- Fashion-MNIST's IDX files ---


@pytest.mark.parametrize("gz", [True, False])
def test_idx_files_raw_or_gzipped(tmp_path, gz):
    write_fashion(tmp_path, n_train=50, n_test=12, gz=gz)
    data = load_dataset("fashion-mnist", tmp_path, val_size=10)
    assert (len(data.train), len(data.val), len(data.test)) == (40, 10, 12)
    assert data.train.images.shape[1:] == (1, 28, 28) and data.train.images.dtype == torch.uint8
    assert data.classes[0] == "T-shirt/top" and data.num_classes == 10
    assert (data.channels, data.size) == (1, 28)
    for part in (data.train, data.val, data.test):
        assert part.labels.dtype == torch.int64
        assert part.labels.tolist() == [t % 10 for t in tags(part.images)]  # pairs kept
    assert tags(data.test.images) == list(range(12))


def test_idx_in_a_subfolder_named_by_mbnas_data(tmp_path, monkeypatch):
    write_fashion(tmp_path / "fashion-mnist")
    monkeypatch.setenv("MBNAS_DATA", str(tmp_path))
    assert len(load_dataset("fashion-mnist", val_size=10).test) == 12


def test_idx_bad_magic(tmp_path):
    write_fashion(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x09\x03" + path.read_bytes()[4:])
    with pytest.raises(MbnasError) as excinfo:
        load_dataset("fashion-mnist", tmp_path)
    one_line_error(excinfo, str(path), "bad magic number 0x00000903", "0x00000803")


@pytest.mark.parametrize("gz", [True, False])
def test_idx_truncated(tmp_path, gz):
    write_fashion(tmp_path, gz=gz)
    path = tmp_path / ("t10k-images-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(MbnasError) as excinfo:
        load_dataset("fashion-mnist", tmp_path)
    one_line_error(excinfo, str(path), "apt-get install dataset-fashion-mnist")


def test_idx_count_mismatch(tmp_path):
    write_fashion(tmp_path, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(49), gz=False)
    with pytest.raises(MbnasError) as excinfo:
        load_dataset("fashion-mnist", tmp_path)
    one_line_error(excinfo, "holds 50 images", "holds 49 labels")


def test_idx_label_out_of_range(tmp_path):
    write_fashion(tmp_path, gz=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.full(12, 10), gz=False)
    with pytest.raises(MbnasError) as excinfo:
        load_dataset("fashion-mnist", tmp_path)
    one_line_error(excinfo, "label 10 is out of range for 10 classes")


def test_idx_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(MbnasError) as excinfo:
        load_dataset("fashion-mnist", tmp_path)
    one_line_error(excinfo, "train-images-idx3-ubyte", str(tmp_path),
                   "apt-get install dataset-fashion-mnist", "--data-dir", "MBNAS_DATA")
    write_fashion(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(MbnasError) as excinfo:
        load_dataset("fashion-mnist", tmp_path)
    one_line_error(excinfo, "t10k-labels-idx1-ubyte")


def test_missing_folder_and_unknown_name(tmp_path):
    with pytest.raises(MbnasError) as excinfo:
        load_dataset("fashion-mnist", tmp_path / "nope")
    one_line_error(excinfo, str(tmp_path / "nope"), "--data-dir", "is not a folder")
    with pytest.raises(MbnasError) as excinfo:
        load_dataset("mnist")
    one_line_error(excinfo, "'mnist'", *DATASETS)


# --- CIFAR ---


@pytest.mark.parametrize("given", ["folder", "parent"])
def test_cifar10(tmp_path, given):
    folder = write_cifar(tmp_path, "cifar10", per_batch=6)
    data = load_dataset("cifar10", folder if given == "folder" else tmp_path, val_size=3)
    assert (len(data.train), len(data.val), len(data.test)) == (27, 3, 6)
    assert data.classes == ("plane", "car", "bird")
    assert data.train.images.shape[1:] == (3, 32, 32) and data.flip
    assert data.test.labels.tolist() == [(5 + j) % 3 for j in range(6)]
    expected = torch.from_numpy(tagged_images(6, 3, 32) + 5)
    assert torch.equal(data.test.images, expected)  # planes kept as R, G, B


def test_cifar100_reads_fine_labels(tmp_path):
    write_cifar(tmp_path, "cifar100", per_batch=20)
    data = load_dataset("cifar100", tmp_path, val_size=4)
    assert (len(data.train), len(data.val), len(data.test)) == (16, 4, 20)
    assert data.num_classes == 100 and data.classes[7] == "c7"
    assert data.test.labels.tolist() == [1 + j for j in range(20)]


def test_cifar_missing_or_corrupt(tmp_path):
    with pytest.raises(MbnasError) as excinfo:
        load_dataset("cifar10")
    one_line_error(excinfo, "no data folder given", "cifar-10-python.tar.gz", "--data-dir")
    with pytest.raises(MbnasError) as excinfo:
        load_dataset("cifar100", tmp_path)
    one_line_error(excinfo, "cifar-100-python", str(tmp_path), "cifar-100-python.tar.gz")
    folder = write_cifar(tmp_path, "cifar10")
    batch = folder / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:200])
    with pytest.raises(MbnasError) as excinfo:
        load_dataset("cifar10", tmp_path)
    one_line_error(excinfo, str(batch), "truncated or corrupt")


# --- image folders ---


def test_folder_with_train_and_test(tmp_path):
    colours = {"blue": (0, 0, 255), "red": (255, 0, 0)}
    for split, n in (("train", 4), ("test", 2)):
        for name, colour in colours.items():
            for i in range(n):
                write_png(tmp_path / split / name / f"{i}.png", colour, size=(20 + i, 12))
    (tmp_path / "train" / "red" / "notes.txt").write_text("not an image")
    data = load_dataset("folder", tmp_path, val_size=1, image_size=8)
    assert data.classes == ("blue", "red")
    assert data.train.images.shape[1:] == (3, 8, 8) and len(data.test) == 4
    assert len(data.train) + len(data.val) == 8
    red = data.test.images[data.test.labels == 1]
    assert red[:, 0].min() == 255 and red[:, 2].max() == 0


def test_folder_of_classes_carves_a_fixed_test_split(tmp_path):
    for i in range(10):
        write_png(tmp_path / ("a" if i % 2 else "b") / f"{i}.jpg", (i, i, i))
    first = load_dataset("folder", tmp_path, val_size=1, split_seed=0, image_size=4)
    other = load_dataset("folder", tmp_path, val_size=1, split_seed=1, image_size=4)
    assert (len(first.train), len(first.val), len(first.test)) == (7, 1, 2)
    assert torch.equal(first.test.images, other.test.images)  # split_seed moves only val


def test_folder_errors(tmp_path):
    with pytest.raises(MbnasError) as excinfo:
        load_dataset("folder", tmp_path)
    one_line_error(excinfo, "no class folders", str(tmp_path), "DIR/train/<class>/")
    write_png(tmp_path / "cat" / "0.png", (1, 2, 3))
    with pytest.raises(MbnasError) as excinfo:  # it would train to 100% and mean nothing
        load_dataset("folder", tmp_path)
    one_line_error(excinfo, "one class folder, 'cat'", "at least 2")
    (tmp_path / "dog").mkdir()
    with pytest.raises(MbnasError) as excinfo:
        load_dataset("folder", tmp_path)
    one_line_error(excinfo, "no images", str(tmp_path / "dog"))
    (tmp_path / "dog" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(MbnasError) as excinfo:
        load_dataset("folder", tmp_path)
    one_line_error(excinfo, "cannot decode", "broken.png")


def test_a_folder_at_a_size_no_memory_holds_is_refused_before_decoding(tmp_path):
    for name in ("a", "b"):
        write_png(tmp_path / name / "0.png", (1, 2, 3))
    with pytest.raises(MbnasError) as excinfo:  # 2 x 3 x 10^12 bytes
        load_dataset("folder", tmp_path, val_size=1, image_size=1_000_000)
    one_line_error(excinfo, "2 images at 1000000 x 1000000 px", "6.0 TB", "--proxy-resolution")


def test_a_folder_trains_at_its_images_own_size(tmp_path):
    # The help says "default: their own"; 64 px images once trained at 32 px.
    for name in ("a", "b"):
        for i in range(3):
            write_png(tmp_path / name / f"{i}.png", (i, 9, 9), size=(64, 64))
    data = load_dataset("folder", tmp_path, val_size=1)
    assert data.size == 64
    from mbnas.training.protocol import Protocol
    from mbnas.training.proxy import load_data

    assert load_data(Protocol(dataset="folder", data_dir=str(tmp_path), subset=None,
                              val_size=1)).size == 64


# --- the validation split ---


def test_split_is_deterministic_disjoint_and_complete(tmp_path):
    write_fashion(tmp_path, n_train=200, gz=False)
    a = load_dataset("fashion-mnist", tmp_path, val_size=30, split_seed=3)
    b = load_dataset("fashion-mnist", tmp_path, val_size=30, split_seed=3)
    for part in ("train", "val", "test"):
        assert torch.equal(getattr(a, part).images, getattr(b, part).images)
        assert torch.equal(getattr(a, part).labels, getattr(b, part).labels)
    assert a.mean == b.mean and a.std == b.std
    train, val = set(tags(a.train.images)), set(tags(a.val.images))
    assert len(val) == 30 and not train & val and train | val == set(range(200))
    other = load_dataset("fashion-mnist", tmp_path, val_size=30, split_seed=4)
    assert set(tags(other.val.images)) != val


def test_subset_keeps_val_and_test(tmp_path):
    write_fashion(tmp_path, n_train=200, gz=False)
    full = load_dataset("fashion-mnist", tmp_path, val_size=30)
    small = load_dataset("fashion-mnist", tmp_path, val_size=30, subset=25)
    assert len(small.train) == 25 and set(tags(small.train.images)) < set(tags(full.train.images))
    assert torch.equal(small.val.images, full.val.images)
    assert torch.equal(small.test.images, full.test.images)
    assert len(load_dataset("fashion-mnist", tmp_path, val_size=30, subset=10**6).train) == 170


@pytest.mark.parametrize(("n_train", "val_size", "expected"),
                         [(200, 10**6, 40), (200, 1, 1), (4, 5000, 1), (2, 1, 1)])
def test_val_size_is_clamped_to_a_fifth(tmp_path, n_train, val_size, expected):
    write_fashion(tmp_path, n_train=n_train, gz=False)
    data = load_dataset("fashion-mnist", tmp_path, val_size=val_size)
    assert len(data.val) == expected and len(data.train) == n_train - expected


@pytest.mark.parametrize("option", [{"val_size": 0}, {"subset": 0}, {"split_seed": -1},
                                    {"val_size": 1.5}, {"subset": True}])
def test_bad_options(option):
    with pytest.raises(MbnasError) as excinfo:
        load_dataset("synthetic", **option)
    one_line_error(excinfo, next(iter(option)))


# --- the synthetic set ---


def test_synthetic_is_deterministic_balanced_and_unflipped():
    a, b = load_dataset("synthetic", "/ignored"), load_dataset("synthetic")
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.val.labels,
                                                                       b.val.labels)
    assert a.train.images.shape[1:] == (3, 16, 16) and not a.flip
    assert len(a.train) + len(a.val) == 2000 and len(a.test) == 500
    all_train = torch.cat([a.train.labels, a.val.labels])
    assert torch.bincount(all_train).tolist() == [200] * 10
    assert torch.bincount(a.test.labels).tolist() == [50] * 10


def test_synthetic_is_learnable_through_batches():
    torch.manual_seed(0)
    data = load_dataset("synthetic", val_size=400)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, stride=2, padding=1), torch.nn.BatchNorm2d(32),
        torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
        torch.nn.Linear(32, 10))
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    train = Batches(data.train, 64, mean=data.mean, std=data.std, train=True, flip=data.flip,
                    pad=1)
    for _ in range(4):
        for x, y in train:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in
                      Batches(data.val, 200, mean=data.mean, std=data.std, train=False))
    assert correct / len(data.val) > 0.4  # chance is 0.1


# --- batches ---


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic")


def gray_set(n: int = 10, side: int = 6) -> ImageSet:
    return ImageSet(torch.from_numpy(tagged_images(n, 1, side)), torch.arange(n) % 3)


def test_batches_shapes_dtype_layout_and_length(synthetic):
    batches = Batches(synthetic.train, 300, mean=synthetic.mean, std=synthetic.std, train=True)
    assert len(batches) == 1600 // 300 == len(list(batches))
    x, y = next(iter(batches))
    assert x.shape == (300, 3, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.is_contiguous(memory_format=torch.channels_last)
    plain = Batches(synthetic.val, 300, mean=synthetic.mean, std=synthetic.std, train=False,
                    channels_last=False)
    sizes = [len(y) for _, y in plain]
    assert sizes == [300, 100] and len(plain) == 2
    assert next(iter(plain))[0].is_contiguous()
    kept = Batches(synthetic.train, 300, mean=synthetic.mean, std=synthetic.std, train=True,
                   drop_last=False)
    assert [len(y) for _, y in kept][-1] == 100 and len(kept) == 6


def test_grayscale_becomes_three_equal_channels():
    data = gray_set()
    x, y = next(iter(Batches(data, 10, mean=[0.5], std=[0.25], train=False)))
    assert x.shape == (10, 3, 6, 6) and torch.equal(x[:, 0], x[:, 2])
    assert torch.allclose(x[:, 1], (data.images[:, 0].float() / 255 - 0.5) / 0.25, atol=1e-5)
    assert torch.equal(y, data.labels)


def test_normalised_val_has_mean_near_0_and_std_near_1(synthetic):
    batches = Batches(synthetic.val, 128, mean=synthetic.mean, std=synthetic.std, train=False)
    x = torch.cat([x for x, _ in batches])
    assert x.mean((0, 2, 3)).abs().max() < 0.05
    assert (x.std((0, 2, 3)) - 1).abs().max() < 0.05


def test_eval_batches_are_the_images_in_order(synthetic):
    batches = Batches(synthetic.val, 64, mean=synthetic.mean, std=synthetic.std, train=False)
    x = torch.cat([x for x, _ in batches])
    mean = torch.tensor(synthetic.mean)[:, None, None]
    std = torch.tensor(synthetic.std)[:, None, None]
    assert torch.allclose(x, (synthetic.val.images.float() / 255 - mean) / std, atol=1e-5)
    assert torch.equal(torch.cat([x for x, _ in batches]), x)  # the same every epoch


def test_augmentation_is_seeded_by_seed_and_epoch(synthetic):
    def epoch(seed: int, number: int) -> tuple[torch.Tensor, torch.Tensor]:
        batches = Batches(synthetic.train, 100, mean=synthetic.mean, std=synthetic.std,
                          train=True, seed=seed)
        batches.set_epoch(number)
        x, y = zip(*batches, strict=True)
        return torch.cat(x), torch.cat(y)

    first, again = epoch(0, 0), epoch(0, 0)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    for other in (epoch(0, 1), epoch(1, 0)):
        assert not torch.equal(first[1], other[1]) and not torch.equal(first[0], other[0])
    batches = Batches(synthetic.train, 100, mean=synthetic.mean, std=synthetic.std, train=True)
    iter(batches)  # each iter() starts the next epoch
    assert torch.equal(torch.cat([x for x, _ in batches]), epoch(0, 1)[0])


def test_crop_and_flip_match_pad_then_slice():
    x = torch.from_numpy(tagged_images(6, 3, 5))
    shifts = torch.tensor([[0, 4, 2, 1, 3, 0], [4, 0, 2, 3, 1, 0]])
    flips = torch.tensor([True, False, True, False, True, False])
    got = crop_and_flip(x, 2, shifts, flips)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(6):
        r, c = shifts[:, i].tolist()
        want = padded[i, :, r:r + 5, c:c + 5]
        assert torch.equal(got[i], want.flip(-1) if flips[i] else want)
    assert torch.equal(crop_and_flip(x, 0, None, flips)[0], x[0].flip(-1))


def test_train_batches_are_crops_of_the_images():
    data = gray_set(n=8, side=6)
    batches = Batches(data, 8, mean=[0.0], std=[1 / 255], train=True, pad=2, flip=False)
    x, y = next(iter(batches))
    padded = torch.nn.functional.pad(data.images, (2, 2, 2, 2)).float()
    for image, label in zip(x[:, 0], y, strict=True):
        source = padded[int(label)::3]  # the images this label can have come from
        windows = source.unfold(2, 6, 1).unfold(3, 6, 1)  # every 6 x 6 crop
        assert (windows == image).flatten(-2).all(-1).any()


def test_batches_reject_bad_options():
    data = gray_set()
    with pytest.raises(MbnasError) as excinfo:
        Batches(data, 11, mean=[0.5], std=[0.5], train=True)
    one_line_error(excinfo, "batch_size: 11", "10 images")
    assert len(Batches(data, 11, mean=[0.5], std=[0.5], train=False)) == 1
    for bad in ({"std": [0.0]}, {"mean": [0.1, 0.2]}, {"pad": -1}):
        with pytest.raises(MbnasError):
            Batches(data, 4, **{"mean": [0.5], "std": [0.5], "train": True, **bad})


# --- the real Fashion-MNIST ---


@pytest.mark.skipif(not FASHION.is_dir(), reason=f"Fashion-MNIST is not installed at {FASHION}")
def test_real_fashion_mnist():
    start = time.perf_counter()
    data = load_dataset("fashion-mnist", val_size=5000)
    loaded = time.perf_counter() - start
    assert (len(data.train), len(data.val), len(data.test)) == (55000, 5000, 10000)
    assert data.train.images.shape[1:] == (1, 28, 28) and data.num_classes == 10
    labels = torch.cat([data.train.labels, data.val.labels])
    assert torch.bincount(labels).tolist() == [6000] * 10
    assert torch.bincount(data.test.labels).tolist() == [1000] * 10
    assert abs(data.mean[0] - 0.286) < 0.002 and abs(data.std[0] - 0.353) < 0.002

    batches = Batches(data.train, 256, mean=data.mean, std=data.std, train=True, flip=data.flip)
    start = time.perf_counter()
    count = sum(1 for _ in batches)
    epoch = time.perf_counter() - start
    assert count == 55000 // 256
    # Printed, not asserted: a training epoch of even a small MobileNet takes minutes on CPU.
    print(f"\nfashion-mnist: loaded in {loaded:.2f} s, one epoch of {count} train batches "
          f"of 256 built in {epoch:.2f} s")
