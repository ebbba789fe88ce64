"""How much faster libyaml's C loader parses a large search-space file than pure Python.

    .venv/bin/python bench/yaml_load.py [--mb 10] [--repeats 1]

Writes one space file of about ``--mb`` megabytes (the default space, with that many
named seed strings under ``seeds:``), parses it with mbnas's reader under each loader
(both refuse duplicate keys), checks they read the same data, and prints the seconds of
each (best of ``--repeats``) and the ratio.  Issue 18: 74 s for 10 MB in pure Python.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from mbnas.arch.seeds import spaces_dir
from mbnas.arch.yamlfile import FAST_LOADER, PURE_LOADER, parse_yaml
from mbnas.search.space import load_space

V2 = ("net_w1.0_r224_n1000_div8,stem_k3_s2_c32,ir_r1_k3_s1_e1_c16,ir_r2_k3_s2_e6_c24,"
      "ir_r3_k3_s2_e6_c32,ir_r4_k3_s2_e6_c64,ir_r3_k3_s1_e6_c96,ir_r3_k3_s2_e6_c160,"
      "ir_r1_k3_s1_e6_c320,head_c1280")


def large_space(megabytes: float) -> str:
    """The default space with seed strings appended under ``seeds:`` to ``megabytes``."""
    text = (spaces_dir() / "mobilenet.yaml").read_text().rstrip("\n") + "\n"
    line = f'  seed_{{:07d}}: "{V2}"\n'
    count = int(megabytes * 1e6 - len(text)) // len(line.format(0)) + 1
    return text + "".join(line.format(i) for i in range(count))


def best_seconds(text: str, loader: type, repeats: int) -> tuple[float, object]:
    times, data = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        data = parse_yaml(text, "space.yaml", loader=loader)
        times.append(time.perf_counter() - start)
    return min(times), data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=10.0, help="size of the file (MB)")
    parser.add_argument("--repeats", type=int, default=1, help="parses per loader")
    args = parser.parse_args()
    if not yaml.__with_libyaml__:
        parser.error("this PyYAML has no libyaml (yaml.CSafeLoader): nothing to compare")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "space.yaml"
        path.write_text(large_space(args.mb))
        text = path.read_text()
        fast, fast_data = best_seconds(text, FAST_LOADER, args.repeats)
        pure, pure_data = best_seconds(text, PURE_LOADER, args.repeats)
        assert fast_data == pure_data, "the two loaders read different data"
        start = time.perf_counter()
        space = load_space(path)  # the whole reader, as mbnas search runs it
        whole = time.perf_counter() - start
    print(f"{path.name}: {len(text) / 1e6:.1f} MB, {len(fast_data['seeds']):,} seeds")
    print(f"C loader (yaml.CSafeLoader):   {fast:7.2f} s")
    print(f"pure Python (yaml.SafeLoader): {pure:7.2f} s")
    print(f"ratio: {pure / fast:.1f}x faster with the C loader")
    print(f"load_space (C loader, then the space's checks): {whole:.2f} s "
          f"({len(space.seeds):,} seeds)")


if __name__ == "__main__":
    main()
