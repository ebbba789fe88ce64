"""Export an architecture as a standalone PyTorch model, and load one back.

:func:`export` writes a folder that needs torch and nothing of mbnas:

- ``model.py`` (format ``py``): one readable source file with the resolved block table at
  the top, the block classes copied from the modules :func:`mbnas.nn.network.build` uses
  (:mod:`.source`), and the network class.  Its state_dict keys are those of ``build``, so
  weights move both ways.
- ``weights.pt`` (``pt``): the state_dict, trained if one is given, else freshly initialised.
- ``model.torchscript.pt`` (``torchscript``) and ``model.onnx`` (``onnx``, dynamic batch).
- ``arch.json``, always: encoding, cost, class name, where the weights came from, and
  what the weights expect of an image (``input``: size, channels, the training data's mean
  and std, class names; see :class:`Inputs`), which ``model.py``'s ``preprocess`` applies.

:mod:`.sources` says what a run's trial or a ``mbnas train`` folder exports (the network
as trained with its weights, or the target spec), :mod:`.write` writes the folder and
:mod:`.load` reads it back.
"""

from mbnas.export._names import CONVENTION, FILES, FORMATS, META, ONNX_OPSET
from mbnas.export.inputs import Inputs, Normalisation
from mbnas.export.load import (
    import_model_file,
    load,
    read_metadata,
    read_state_dict,
    state_dict_mismatch,
)
from mbnas.export.source import check_class_name, model_source
from mbnas.export.write import check_formats, export

__all__ = ["CONVENTION", "FILES", "FORMATS", "META", "ONNX_OPSET", "Inputs", "Normalisation",
           "check_class_name", "check_formats", "export", "import_model_file", "load",
           "model_source", "read_metadata", "read_state_dict", "state_dict_mismatch"]
