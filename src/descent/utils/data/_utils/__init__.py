"""torch.utils.data._utils: the private path some programs import `collate` from."""

from . import collate  # noqa: F401
