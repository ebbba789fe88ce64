"""The one YAML reader of spec and search-space files: safe, fast, and strict on keys.

PyYAML's own ``safe_load`` keeps the last of two equal keys and parses in pure Python
(74 s for a 10 MB space file, issue 18).  Here libyaml's C parser is used where PyYAML
has it (``yaml.CSafeLoader``; the pure-Python ``SafeLoader`` otherwise), and a key given
twice in one mapping is refused.  Both loaders build mappings with the Python
``construct_mapping`` below, so the check holds under either.
"""

from __future__ import annotations

import yaml

from mbnas.errors import MbnasError

_MERGE = "tag:yaml.org,2002:merge"  # ``<<: *base`` may be overridden by the keys after it


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key, line: int) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key, self.line = key, line


def _unique_keys(base: type) -> type:
    class Loader(base):
        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                seen = set()
                for key_node, _ in node.value:
                    if key_node.tag == _MERGE:
                        continue
                    key = self.construct_object(key_node, deep=True)
                    try:
                        duplicate = key in seen
                        seen.add(key)
                    except TypeError:  # an unhashable key: construct_mapping names it
                        continue
                    if duplicate:
                        raise _DuplicateKey(key, key_node.start_mark.line + 1)
            return super().construct_mapping(node, deep=deep)

    Loader.__name__ = f"UniqueKey{base.__name__}"
    return Loader


FAST_LOADER = _unique_keys(getattr(yaml, "CSafeLoader", yaml.SafeLoader))
PURE_LOADER = _unique_keys(yaml.SafeLoader)


def parse_yaml(text: str, where: str, *, loader: type = FAST_LOADER):
    """The data of YAML ``text`` read from ``where`` (a path, for the messages); invalid
    YAML and a duplicate key are one-line :class:`MbnasError` s."""
    try:
        return yaml.load(text, Loader=loader)  # safe: both loaders derive from SafeLoader
    except _DuplicateKey as err:
        raise MbnasError(f"{where}: duplicate key {err.key!r} (line {err.line}); each key "
                         "may appear once in a mapping") from None
    except yaml.YAMLError as err:
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise MbnasError(f"{where}: not valid YAML: {first}") from None


def read_text(path, what: str) -> str:
    """The text of a spec or space file, or one line naming it (``what``: "spec file")."""
    from pathlib import Path

    try:
        return Path(path).read_text()
    except OSError as err:
        raise MbnasError(f"cannot read {what} {str(path)!r}: {err.strerror}") from None
