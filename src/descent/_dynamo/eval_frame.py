"""`torch._dynamo.eval_frame`: `OptimizedModule`, the class of `torch.compile(module)`'s
result (scripts test `isinstance(model, torch._dynamo.eval_frame.OptimizedModule)` to unwrap
`model._orig_mod`)."""

from descent.compiler.optimized_module import OptimizedModule

__all__ = ["OptimizedModule"]
