"""`torch._inductor`: only its `config` module (docs/compile.md, "torch._dynamo")."""

from descent._inductor import config

__all__ = ["config"]
