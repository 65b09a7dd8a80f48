"""Plain ``torch.nn`` copies of the few torchvision / segmentation-models-pytorch networks the
project builds on, with their module names (so every checkpoint loads unchanged), their numerics
and their random-init draws.

Why copies: importing torchvision (which smp and timm import) pulls in ``torch._dynamo``, sympy
and triton, about 1.2 s before ``segcolor colorize`` can start; these modules need only torch.
``tests/test_nets.py`` checks names, outputs and init against the originals when installed.
"""

from segcolor.nets.loading import assign_weights, build_empty

__all__ = ["assign_weights", "build_empty"]
