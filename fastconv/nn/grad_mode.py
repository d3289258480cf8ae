"""fastconv.nn.no_grad(): forward passes that keep nothing for a backward, as torch.no_grad()
does for autograd. Layers normally keep what their backward needs (a conv's input, a ReLU's
output, a max-pool's int64 indices); in inference those arrays only hold memory, and a
network's next forward then allocates its activations afresh beside them, page-faulting new
memory in on every call (VGG-16 at batch 1: 13 MB per early layer). Thread-local, like torch's."""
from __future__ import annotations

import functools
import threading

_state = threading.local()


def is_grad_enabled():
    """False inside no_grad() on this thread."""
    return getattr(_state, "enabled", True)


class no_grad:
    """Context manager (or decorator): layers' forward passes inside it save nothing for
    backward, and a backward that needs what they did not save raises RuntimeError."""

    def __enter__(self):
        _state.stack = getattr(_state, "stack", []) + [is_grad_enabled()]
        _state.enabled = False
        return self

    def __exit__(self, *exc):
        _state.enabled = _state.stack.pop()
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        return run


def saved(value):
    """value, or None inside no_grad(): what a layer's forward keeps for its backward."""
    return value if is_grad_enabled() else None


def needed(value, layer):
    """What layer's forward saved, for its backward; a clear error if it saved nothing."""
    if value is None:
        raise RuntimeError(f"{type(layer).__name__}.backward needs what its forward saves, and no forward "
                           f"has saved it: the last one ran under fastconv.nn.no_grad(), or none has run")
    return value
