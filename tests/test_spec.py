import pytest

from mbnas.arch.seeds import seed
from mbnas.arch.spec import Arch, Stage, Stem, min_resolution, resolve, scale_channels
from mbnas.errors import MbnasError


@pytest.mark.parametrize(
    ("channels", "width", "expected"),
    [
        (32, 1.0, 32), (32, 0.35, 16), (16, 0.35, 8), (24, 0.5, 16), (1280, 1.4, 1792),
        (96, 0.75, 72), (320, 0.35, 112), (160, 1.3, 208), (32, 1.4, 48),
    ],
)
def test_divisible8_rounds_to_nearest_multiple_of_8_never_10_percent_below(channels, width,
                                                                           expected):
    got = scale_channels(channels, width, "divisible8")
    assert got == expected
    assert got % 8 == 0 and got >= 8 and got >= 0.9 * channels * width


@pytest.mark.parametrize(("channels", "width", "expected"),
                         [(32, 0.25, 8), (1024, 0.75, 768), (100, 0.29, 29), (3, 0.1, 1)])
def test_truncate_is_tf_slim_int(channels, width, expected):
    assert scale_channels(channels, width, "truncate") == expected


def test_v2_head_stays_1280_below_width_1_and_scales_above():
    widths = {w: resolve(Arch(**{**seed("mobilenet_v2").__dict__, "width": w})).features
              for w in (0.35, 1.0, 1.4)}
    assert widths == {0.35: 1280, 1.0: 1280, 1.4: 1792}


def test_v2_blocks_follow_table_2():
    net = resolve(seed("mobilenet_v2"))
    ir = [b for b in net.blocks if b.kind == "ir"]
    assert len(ir) == 17
    assert [b.out_size for b in net.blocks][-1] == 7
    first = ir[0]
    assert (first.hidden_channels, first.out_channels) == (32, 16)
    assert [c.name for c in first.convs()] == ["stage1.0.depthwise", "stage1.0.project"]
    assert ir[1].hidden_channels == 96 and ir[1].stride == 2
    # shortcut only where stride 1 and channels match
    assert [b.residual for b in ir] == [
        False, False, True, False, True, True, False, True, True, True,
        False, True, True, False, True, True, False]


def test_v1_map_stays_7x7_at_the_end():
    net = resolve(seed("mobilenet_v1"))
    assert [b.out_size for b in net.blocks][-3:] == [14, 7, 7]
    assert net.features == 1024 and not any(b.residual for b in net.blocks)


def test_min_resolution_is_tight():
    strides = (2, 1, 2, 2, 2, 1, 2, 1)
    need = min_resolution(strides)
    assert need == 17
    Arch(stages=(Stage("ir", 16, stride=2),), resolution=3, stem=Stem(stride=2))
    seed_arch = seed("mobilenet_v2")
    Arch(**{**seed_arch.__dict__, "resolution": need})
    with pytest.raises(MbnasError, match="at least 17"):
        Arch(**{**seed_arch.__dict__, "resolution": need - 1})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kernel": 4}, "kernel: 4 is not allowed; choose one of 3, 5, 7"),
        ({"kernel": 2}, "kernel"),
        ({"repeats": 0}, "repeats: 0 is not allowed; it must be at least 1"),
        ({"repeats": 100_000_000}, "repeats: 100000000 is not allowed; a network has at most "
                                   "1000 blocks"),
        ({"block": "mb"}, "block: 'mb' is not allowed; choose one of ds, ir"),
        ({"stride": 3}, "stride: 3 is not allowed"),
        ({"channels": 0}, "channels"),
        ({"channels": 2.5}, "channels: expected an integer"),
        ({"expansion": 0}, "expansion: 0 is not allowed"),
        ({"block": "ds", "expansion": 6}, "expansion: 6 is not allowed for a 'ds' block"),
        ({"block": "ds", "expanded": 64}, "expanded: 64 is not allowed for a 'ds' block"),
        ({"block": "ir", "expansion": 6, "expanded": 64}, "either as a ratio"),
        ({"block": "ir", "se": 1}, "se: expected true or false"),
        ({"block": "mb"}, "block: 'mb' is not allowed; choose one of ds, ir"),
        ({"activation": "gelu"}, "activation: 'gelu' is not allowed; choose one of relu, relu6"),
        ({"shortcut": "yes"}, "shortcut: expected true or false"),
    ],
)
def test_stage_validation_names_the_field(kwargs, message):
    base = {"block": "ir", "channels": 16}
    with pytest.raises(MbnasError, match=message.replace("(", r"\(")):
        Stage(**{**base, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"width": 0}, "width: 0 is not allowed"), ({"width": -1.0}, "width"),
     ({"width": float("nan")}, "width"), ({"resolution": 0}, "resolution"),
     ({"num_classes": 0}, "num_classes"), ({"rounding": "ceil"}, "rounding"),
     ({"stages": ()}, "at least one stage"),
     ({"stages": (Stage("ir", 16, repeats=600),) * 2},
      "stages: 1200 blocks in all is not allowed; a network has at most 1000 blocks")],
)
def test_arch_validation_names_the_field(kwargs, message):
    base = {"stages": (Stage("ir", 16),)}
    with pytest.raises(MbnasError, match=message):
        Arch(**{**base, **kwargs})
