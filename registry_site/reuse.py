"""Serializers reused within a thread, for the inputs and answers of hot requests.

Building a DRF serializer copies every declared field, and a ModelSerializer first derives
its fields from the model: for a small input or a one-object answer that is most of the
work. Fields keep no state of one validation or one representation, so an instance serves
the next use once its data, instance, context and results are cleared. Each thread keeps its
own idle instances; a serializer in use is never idle, so a nested use of the same class
gets another one.
"""

import contextlib
import threading

_idle = threading.local()
_STATE = ("initial_data", "_validated_data", "_errors", "_data")


@contextlib.contextmanager
def reused(serializer_class, **context):
    """An instance of ``serializer_class`` with no data, no instance and ``context``."""
    idle = _idle.__dict__.setdefault(serializer_class, [])
    serializer = idle.pop() if idle else serializer_class()
    serializer._context = context
    try:
        yield serializer
    finally:
        for name in _STATE:
            serializer.__dict__.pop(name, None)
        serializer.instance, serializer._context = None, {}
        idle.append(serializer)


def represented(serializer_class, instance, **context) -> dict:
    """``serializer_class(instance, context=context).data``, from a reused serializer."""
    with reused(serializer_class, **context) as serializer:
        serializer.instance = instance
        return dict(serializer.data)
