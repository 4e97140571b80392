"""More dropout layers: Dropout3d (whole channels of volumes), AlphaDropout and
FeatureAlphaDropout (for SELU networks: dropped units take SELU's saturation value and an
affine correction keeps the mean and variance). The identity in eval mode."""

from __future__ import annotations

from . import functional as F
from .channel_dropout import _DropoutNd

__all__ = ["Dropout3d", "AlphaDropout", "FeatureAlphaDropout"]


class Dropout3d(_DropoutNd):
    """Channel dropout for (N, C, D, H, W) or unbatched (C, D, H, W) inputs."""

    def forward(self, input):
        return F.dropout3d(input, self.p, self.training, self.inplace)


class AlphaDropout(_DropoutNd):
    """Alpha dropout (Klambauer et al. 2017) of single elements."""

    def forward(self, input):
        # `inplace` is not passed on, as in PyTorch's module (its functional form takes it)
        return F.alpha_dropout(input, self.p, self.training)


class FeatureAlphaDropout(_DropoutNd):
    """Alpha dropout of whole channels."""

    def forward(self, input):
        # `inplace` is not passed on, as in PyTorch's module
        return F.feature_alpha_dropout(input, self.p, self.training)
