"""descent.explain: tools that explain the gradients descent computes."""

from .gradcheck import GradcheckError, GradcheckResult, gradcheck, gradgradcheck  # noqa: F401
