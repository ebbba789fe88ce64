"""Channel counts under a width multiplier: the one rounding rule of each paper."""

from __future__ import annotations


def scale_channels(channels: int, width: float, rounding: str) -> int:
    """The one place channel counts are scaled by the width multiplier.

    ``divisible8`` is MobileNetV2's rule: round to the nearest multiple of 8,
    never below 8 and never more than 10% below ``channels * width``.
    ``truncate`` is MobileNetV1's (tf-slim): ``int(channels * width)``.
    """
    value = channels * width
    if rounding == "truncate":
        # round() first so that 0.29 * 100 gives 29, not 28.
        return max(1, int(round(value, 9)))
    scaled = max(8, int(value + 4) // 8 * 8)
    if scaled < 0.9 * value:
        scaled += 8
    return scaled
