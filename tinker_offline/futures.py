"""Futures shaped like the tinker SDK's: every call returns one, ``.result()`` gives the value.

The offline engine runs each request when it is submitted, in submission order, as Tinker
does; a request that fails keeps its exception in the future and raises it from
``.result()``, where a Tinker user would meet a failed request.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Callable, TypeVar

from tinker.lib.public_interfaces.api_future import APIFuture, AwaitableConcurrentFuture

T = TypeVar("T")


def run_now(operation: Callable[[], T]) -> APIFuture[T]:
    future: Future[T] = Future()
    try:
        future.set_result(operation())
    except Exception as error:  # noqa: BLE001 - delivered through .result(), like Tinker
        future.set_exception(error)
    return AwaitableConcurrentFuture(future)
