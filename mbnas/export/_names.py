"""What an export folder holds: its formats and file names, and the MAC convention it states."""

from __future__ import annotations

FORMATS = ("py", "pt", "torchscript", "onnx")
FILES = {"py": "model.py", "pt": "weights.pt", "torchscript": "model.torchscript.pt",
         "onnx": "model.onnx"}
META = "arch.json"
# Opset 18 is the oldest the torch.export-based exporter translates to natively; ONNX
# Runtime has run it since 1.14.
ONNX_OPSET = 18
CONVENTION = "MACs: convolutions + classifier, one per multiply-add"
