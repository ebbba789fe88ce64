"""The README's export snippet, pasted as a user would: it must run without mbnas."""

import re
import subprocess
import sys
from pathlib import Path

from cli import run

README = Path(__file__).parent.parent / "README.md"


def test_readme_export_snippet_runs_in_plain_pytorch(tmp_path):
    text = README.read_text()
    command = re.search(r"^mbnas export (mobilenet_v2 .*?)\s+#", text, re.M).group(1).split()
    result = run("export", *command, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    snippet = re.search(r"```python\n(import importlib.*?)```", text, re.S).group(1)
    snippet += "\nassert logits.shape == (1, meta['num_classes']), logits.shape\nprint('ok')\n"
    assert len(snippet.strip().splitlines()) <= 12
    # -I: isolated, so the mbnas checkout is not importable from the working directory
    out = subprocess.run([sys.executable, "-I", "-c", snippet], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
