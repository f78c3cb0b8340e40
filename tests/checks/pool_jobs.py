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
