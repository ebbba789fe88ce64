"""Search settings are honoured or refused in one line, never silently replaced."""

import dataclasses

import pytest

from mbnas.arch.cost import count
from mbnas.arch.seeds import seed
from mbnas.errors import MbnasError
from mbnas.search.run import one_per_core, trial_resources
from mbnas.search.settings import SearchSettings
from mbnas.training.protocol import Protocol, TrainConfig


def settings(device="auto", threads=None, **kwargs) -> SearchSettings:
    protocol = Protocol(train=TrainConfig(device=device, threads=threads))
    return SearchSettings(budget=300_000_000, protocol=protocol, **kwargs)


CPU_ONLY = {"CPU": 2.0}
ONE_GPU = {"CPU": 16.0, "GPU": 1.0}


@pytest.mark.parametrize(("kwargs", "resources", "expected"), [
    ({}, CPU_ONLY, (2.0, 0.0)),
    ({"concurrency": 2}, CPU_ONLY, (1.0, 0.0)),
    ({}, ONE_GPU, (16.0, 1.0)),  # a GPU per trial where there are GPUs
    ({"device": "cpu"}, ONE_GPU, (16.0, 0.0)),  # --device cpu keeps trials off the GPU
    ({"gpus_per_trial": 0.5, "concurrency": 2}, ONE_GPU, (8.0, 0.5)),
    ({"threads": 1, "cpus_per_trial": 1}, CPU_ONLY, (1, 0.0)),
])
def test_resources_follow_the_options(kwargs, resources, expected):
    assert trial_resources(settings(**kwargs), resources) == expected


@pytest.mark.parametrize(("kwargs", "resources", "gpus", "expected"), [
    ({}, CPU_ONLY, 0.0, 2),  # left to mbnas: references and confirmation one per core
    ({}, {"CPU": 1.0}, 0.0, 0),  # one core: nothing to split
    ({}, ONE_GPU, 1.0, 0),  # on GPUs they run like the search's trials
    ({"concurrency": 2}, CPU_ONLY, 0.0, 0),  # the user's choices are kept everywhere
    ({"cpus_per_trial": 2}, CPU_ONLY, 0.0, 0),
    ({"threads": 2}, CPU_ONLY, 0.0, 0),
    ({"address": "auto"}, CPU_ONLY, 0.0, 0),  # a cluster's CPUs are the user's business
])
def test_fixed_phases_train_one_network_per_core_only_where_left_to_mbnas(
        kwargs, resources, gpus, expected):
    assert one_per_core(settings(**kwargs), resources, gpus) == expected


@pytest.mark.parametrize(("kwargs", "resources", "message"), [
    ({"device": "cuda"}, CPU_ONLY, "--device cuda was asked for but the Ray cluster has 0 GPUs"),
    ({"device": "cuda", "gpus_per_trial": 0}, ONE_GPU, "--gpus-per-trial is 0"),
    ({"device": "cpu", "gpus_per_trial": 1}, ONE_GPU, "--device cpu contradicts"),
    ({"gpus_per_trial": 2}, ONE_GPU, "asks for GPUs the cluster does not have"),
    ({"cpus_per_trial": 4}, CPU_ONLY, "more than the cluster's 2 CPUs"),
    ({"threads": 2, "concurrency": 2}, CPU_ONLY, "--threads 2 is more than the 1 CPUs"),
])
def test_contradictions_are_refused(kwargs, resources, message):
    with pytest.raises(MbnasError, match=message):
        trial_resources(settings(**kwargs), resources)


@pytest.mark.parametrize(("change", "message"), [
    ({"objective": "speed"}, "objective: 'speed' is not allowed"),
    ({"sampler": "grid"}, "sampler: 'grid' is not allowed"),
    ({"trials": 0}, "--trials: 0 must be at least 1"),
    ({"keep_weights": "some"}, "--keep-weights: 'some' is not allowed"),
])
def test_bad_settings_name_the_option(change, message):
    with pytest.raises(MbnasError, match=message):
        dataclasses.replace(SearchSettings(budget=1), **change)


def test_a_local_search_on_cuda_without_a_gpu_is_refused_before_any_file(tmp_path):
    import torch
    from cli import assert_usage_error, run

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = run("search", "--budget", "300M", "--device", "cuda", "--runs-dir",
                 str(tmp_path / "runs"))
    assert_usage_error(result, "device: 'cuda' was asked for but no CUDA GPU is visible")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("budget", "resolution", "trained"), [
    # The default space holds V2 as the paper builds it (trained as a seed candidate), not
    # V1 (ReLU, channels truncated) nor V3-Large: those two are references.
    (300_000_000, None, ("mobilenet_v1 x0.72", "mobilenet_v3_large x1.16")),
    (600_000_000, None, ("mobilenet_v1 x1.031", "mobilenet_v3_large x1.687")),
    (300_000_000, 160, ("mobilenet_v1 x1.018", "mobilenet_v3_large x1.666")),  # priced at 160
    (20_000_000, None, ()),  # every family is over 20M at x0.25
])
def test_default_references_are_the_rivals_the_search_does_not_train_already(
        budget, resolution, trained):
    from mbnas.search.confirm import ConfirmSettings
    from mbnas.search.run import reference_archs
    from mbnas.search.space import resolve_space

    # Without a confirmation the references are the search's only figures for the rivals.
    settings = SearchSettings(budget=budget, resolution=resolution,
                              confirm=ConfirmSettings(top=0))
    archs, over = reference_archs(settings, resolve_space(None))
    assert tuple(archs) == trained
    assert all(count(a).macs <= budget for a in archs.values())
    assert all(a.resolution == (resolution or 224) for a in archs.values())
    assert (set(over) == {"mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large"}) == (not trained)
    assert all(macs > budget for macs in over.values())
    # With one (the default) the confirmation retrains every rival at a higher fidelity,
    # so no proxy figure is spent on them first; the rivals over the budget still say so.
    archs, over_confirmed = reference_archs(SearchSettings(budget=budget, resolution=resolution),
                                            resolve_space(None))
    assert archs == {} and over_confirmed == over
    named = ("mobilenet_v1",)  # named ones are the canonical networks, whatever they cost
    archs, over = reference_archs(SearchSettings(budget=budget, references=named),
                                  resolve_space(None))
    assert archs == {"mobilenet_v1": seed("mobilenet_v1")} and over == {}


def test_a_search_screens_on_3000_images_and_20_trials_where_training_keeps_6000():
    """The search's defaults (what the search-quality benchmark kept): 20 candidates on
    3,000 images each; ``mbnas train`` and ``baseline`` keep the protocol's 6,000."""
    from cli import run

    from mbnas.training.protocol import DEFAULT_SUBSET, SEARCH_SUBSET

    def help_of(command: str) -> str:
        return " ".join(run(command, "--help").stdout.split())

    assert f"0 for all (default {SEARCH_SUBSET})" in help_of("search")
    assert "counting those of earlier runs (default 20)" in help_of("search")
    for command in ("train", "baseline"):
        assert f"0 for all (default {DEFAULT_SUBSET})" in help_of(command)
    assert SearchSettings(budget=1).protocol.subset == SEARCH_SUBSET
    assert SearchSettings(budget=1).trials == 20
