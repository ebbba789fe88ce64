"""The block kinds, one module each; registering a kind is one line below.

A kind module holds the kind's description (its options and encoding tokens, its hidden
width, the convolutions the cost model prices) and, made on first use so that pricing
stays torch-free, its ``nn.Module``.  See the README, "Adding a block kind".
"""

from mbnas.arch.kinds import register
from mbnas.blocks import conv, ds, ir

register(conv.KIND)
register(ds.KIND)
register(ir.KIND)
