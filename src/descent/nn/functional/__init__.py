"""torch.nn.functional for descent: the same names and signatures, on descent Tensors.

The hot paths are fused ops with array-level forward and backward (see docs/functional.md):
`cross_entropy` (class-index targets), `layer_norm`, `rms_norm`, `scaled_dot_product_attention`,
`batch_norm` (training), `linear`, `conv1d`/`conv2d`, `max_pool2d`, `avg_pool2d`, `embedding` and
`binary_cross_entropy`. Each one's backward is written so that under `create_graph=True` it runs
through recorded ops: every function here supports higher-order gradients. The remaining losses
and layers are composites of descent ops.

    >>> import descent as ds
    >>> import descent.nn.functional as F
    >>> logits = ds.randn(4, 10, requires_grad=True)
    >>> loss = F.cross_entropy(logits, ds.tensor([1, 0, 9, 3]))
    >>> loss.backward()

The functions live in one file per concept, as torch.nn.modules splits the layers; import them
from this package, not from the files (whose names start with `_` for that reason: a file
called `linear` would shadow the function `linear` on the package):

    _activation     relu, gelu, silu, tanh, sigmoid, ..., softmax, log_softmax
    _activation_extra  hardtanh, relu6, hardsigmoid, hardswish, selu, celu, mish, ..., glu,
                    prelu, gumbel_softmax
    _linear         linear
    _embedding      embedding, embedding_bag, one_hot
    _dropout        dropout
    _padding        pad
    _attention      scaled_dot_product_attention
    _normalization  layer_norm, rms_norm, batch_norm, group_norm, instance_norm, normalize,
                    cosine_similarity
    _conv           conv1d, conv2d
    _conv_extra     conv3d, conv_transpose1d/2d/3d, unfold, fold
    _pooling        max_pool1d/2d, avg_pool1d/2d, adaptive_avg_pool1d/2d
    _pooling_extra  max_pool3d, avg_pool3d, max_unpool1d/2d/3d, adaptive_max_pool1d/2d
    _pooling_fractional  fractional_max_pool2d/3d (and _with_indices)
    _torch_toplevel  conv_tbc, native_channel_shuffle (torch's top-level functions)
    _mha            multi_head_attention_forward
    _vision         interpolate, upsample*, pixel_shuffle/unshuffle, channel_shuffle,
                    grid_sample, affine_grid
    _distance       pairwise_distance
    _loss           cross_entropy, nll_loss, mse_loss, ..., kl_div
    _loss_extra     margin_ranking_loss, triplet_margin_loss, poisson/gaussian_nll_loss, ctc_loss,
                    cosine_embedding_loss
    _loss_margin    hinge_embedding, soft_margin, multilabel_soft_margin, multi_margin and
                    multilabel_margin losses, triplet_margin_with_distance_loss
    _inplace        relu_, elu_, leaky_relu_, hardtanh_, threshold_, celu_, selu_, rrelu_
    _inputs         argument checks shared by the files above (nothing public)

The op classes (forward and derivative on arrays) are in `descent.ops`; this layer only maps
PyTorch's arguments onto them, so descent.ops never needs to import descent.nn.
"""

from . import (
    _activation,
    _activation_extra,
    _attention,
    _conv,
    _conv_extra,
    _distance,
    _dropout,
    _embedding,
    _inplace,
    _linear,
    _linear_ce,
    _loss,
    _loss_extra,
    _loss_margin,
    _mha,
    _normalization,
    _padding,
    _pooling,
    _pooling_extra,
    _pooling_fractional,
    _torch_toplevel,
    _vision,
)
from ._activation import *
from ._activation_extra import *
from ._attention import *
from ._conv import *
from ._conv_extra import *
from ._distance import *
from ._dropout import *
from ._embedding import *
from ._inplace import *
from ._linear import *
from ._linear_ce import *
from ._loss import *
from ._loss_extra import *
from ._loss_margin import *
from ._mha import *
from ._normalization import *
from ._padding import *
from ._pooling import *
from ._pooling_extra import *
from ._pooling_fractional import *
from ._torch_toplevel import *
from ._vision import *

# Each name is listed once, in the `__all__` of the file that defines it; the package's list is
# their union (a test checks there are no duplicates and that the set matches PyTorch's names
# as recorded before the split).
__all__ = (
    _linear_ce.__all__
    + _activation.__all__
    + _activation_extra.__all__
    + _linear.__all__
    + _embedding.__all__
    + _dropout.__all__
    + _padding.__all__
    + _attention.__all__
    + _normalization.__all__
    + _conv.__all__
    + _conv_extra.__all__
    + _pooling.__all__
    + _pooling_extra.__all__
    + _vision.__all__
    + _loss.__all__
    + _loss_extra.__all__
    + _loss_margin.__all__
    + _distance.__all__
    + _inplace.__all__
    + _pooling_fractional.__all__
    + _torch_toplevel.__all__
    + _mha.__all__
)
