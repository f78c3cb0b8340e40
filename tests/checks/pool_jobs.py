"""Functions the worker-pool tests send to worker processes (importable by spawned workers)."""

from __future__ import annotations

import os
import time


def pid_of_worker() -> int:
    return os.getpid()


def sleep_then_return(seconds: float, value: int) -> int:
    time.sleep(seconds)
    return value


def die_abruptly() -> None:
    os._exit(137)


def raise_value_error(message: str) -> None:
    raise ValueError(message)


def return_a_lock() -> object:
    """A result that cannot be pickled back to the parent."""
    import threading

    return threading.Lock()


def explode_on_load() -> None:
    raise RuntimeError("this job cannot be unpickled")


class UnpicklesBadly:
    """Pickles in the parent, raises when the worker unpickles it."""

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (explode_on_load, ())


def nested(depth: int) -> dict[str, object]:
    """A dict nested `depth` levels: what a 900-level suite `meta` looks like to pickle."""
    node: dict[str, object] = {}
    root = node
    for _ in range(depth):
        child: dict[str, object] = {}
        node["meta"] = child
        node = child
    return root


def identity(value: object) -> object:
    return value
