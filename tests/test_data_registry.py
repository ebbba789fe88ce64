"""A data set is one registration (issue 19): the README's "Adding a data set" snippet,
run as written, makes a set that every layer takes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mbnas.cli import main
from mbnas.data import dataset_kind, dataset_names, load_dataset, unregister
from mbnas.errors import MbnasError
from mbnas.training.protocol import Protocol

README = Path(__file__).parent.parent / "README.md"
TINY = "stem_k3_s2_c8,ds_r1_k3_s2_c16,ir_r1_k3_s2_e2_c16"


@pytest.fixture
def stripes():
    section = README.read_text().split("### Adding a data set", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(snippet, "README.md", "exec"), {})
    import torch

    threads = torch.get_num_threads()  # training in this process sets them (--threads 1)
    try:
        yield dataset_kind("stripes")
    finally:
        unregister("stripes")
        torch.set_num_threads(threads)


def test_the_readme_registers_a_data_set_every_layer_takes(stripes, tmp_path):
    assert "stripes" in dataset_names()
    data = load_dataset("stripes", val_size=500)
    assert (len(data.train), len(data.val), len(data.test)) == (2000, 500, 500)
    assert data.classes == ("horizontal", "vertical") and data.flip
    assert Protocol(dataset="stripes").dataset == "stripes"
    out = tmp_path / "model"
    code = main(["train", TINY, "--dataset", "stripes", "--epochs", "2", "--subset", "0",
                 "--val-size", "500", "--threads", "1", "--out", str(out)])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == "stripes" and metrics["val_acc"] > 0.5  # chance is 0.5


def test_names_are_unique_and_unknown_ones_are_refused(stripes):
    from mbnas.data import DataSetKind, register

    with pytest.raises(MbnasError, match="already registered"):
        register(DataSetKind("stripes", lambda folder, size: None))
    with pytest.raises(MbnasError, match="'mnist' is not allowed; choose one of fashion-mnist"):
        Protocol(dataset="mnist")


def test_the_registry_and_the_protocol_import_no_torch():
    import subprocess
    import sys

    code = ("import sys, mbnas.training.protocol, mbnas.data; "
            "print(sorted({'torch'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
