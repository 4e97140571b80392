"""`torch._dynamo.exc`: the errors descent's compile raises under `torch._dynamo.config`."""


class TorchDynamoException(RuntimeError):
    """Base of the compile errors (PyTorch's name)."""


class RecompileError(TorchDynamoException):
    """A compiled function met a new input signature while `config.error_on_recompile` is
    set."""
