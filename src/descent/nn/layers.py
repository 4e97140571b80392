"""Every layer of descent.nn in one namespace, the import path from before the layers were split
into one file per concept (linear.py, conv.py, ...): `from descent.nn.layers import Linear`
keeps working. New code imports from `descent.nn`.
"""

from . import activation, conv, dropout, embedding, flatten, linear, normalization, pooling
from .activation import *
from .conv import *
from .dropout import *
from .embedding import *
from .flatten import *
from .linear import *
from .normalization import *
from .pooling import *

# Each name is listed once, in the file that defines it.
__all__ = (
    linear.__all__
    + embedding.__all__
    + normalization.__all__
    + dropout.__all__
    + conv.__all__
    + pooling.__all__
    + flatten.__all__
    + activation.__all__
)
