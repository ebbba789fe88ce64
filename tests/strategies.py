"""Hypothesis strategies for valid architecture specs."""

from __future__ import annotations

from hypothesis import strategies as st

from mbnas.arch.spec import ACTIVATIONS, KERNELS, ROUNDINGS, Arch, Head, Stage, Stem, min_resolution


@st.composite
def stages(draw) -> Stage:
    block = draw(st.sampled_from(["ds", "ir"]))
    expanded = draw(st.one_of(st.none(), st.integers(1, 200))) if block == "ir" else None
    return Stage(
        block=block,
        channels=draw(st.integers(1, 96)),
        repeats=draw(st.integers(1, 3)),
        kernel=draw(st.sampled_from(KERNELS)),
        stride=draw(st.sampled_from([1, 2])),
        expansion=draw(st.sampled_from([1, 2, 3, 4, 6, 2.5]))
        if block == "ir" and expanded is None else 1,
        expanded=expanded,
        se=draw(st.booleans()),
        shortcut=draw(st.booleans()),
        activation=draw(st.sampled_from(ACTIVATIONS)),
    )


@st.composite
def archs(draw, max_extra_resolution: int = 48) -> Arch:
    """Valid specs; resolutions stay small so that building them is quick."""
    stem = Stem(channels=draw(st.integers(1, 48)), kernel=draw(st.sampled_from(KERNELS)),
                stride=draw(st.sampled_from([1, 2])),
                activation=draw(st.sampled_from(ACTIVATIONS)))
    body = tuple(draw(st.lists(stages(), min_size=1, max_size=5)))
    head = draw(st.one_of(st.none(), st.builds(Head, channels=st.integers(1, 160),
                                               activation=st.sampled_from(ACTIVATIONS),
                                               fc=st.one_of(st.none(), st.integers(1, 300)))))
    strides = (stem.stride, *(s.stride for s in body))
    resolution = min_resolution(strides) + draw(st.integers(0, max_extra_resolution))
    width = draw(st.one_of(st.sampled_from([0.25, 0.35, 0.5, 0.75, 1.0, 1.3, 1.4]),
                           st.floats(0.1, 2.0, allow_nan=False)))
    return Arch(stages=body, stem=stem, head=head, width=width, resolution=resolution,
                num_classes=draw(st.integers(1, 1000)),
                rounding=draw(st.sampled_from(ROUNDINGS)))
