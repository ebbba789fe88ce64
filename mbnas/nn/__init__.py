"""The bridge to PyTorch: :func:`mbnas.nn.network.build` turns a spec into an ``nn.Module``
built from the shared layers (:mod:`.layers`) and each block kind's module."""
