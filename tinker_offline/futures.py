"""Futures shaped like the tinker SDK's: every call returns one, ``.result()`` gives the value.

The offline engine runs each request when it is submitted, in submission order, as Tinker
does; a request that fails keeps its exception in the future and raises it from
``.result()``, where a Tinker user would meet a failed request.

A request the *server* refuses (bad input) raises ``ServerRejection`` or ``BadRequest``
inside the engine.
``run_now`` turns it into what the SDK's future raises for a failed request
(``tinker/lib/api_future_impl.py``): ``tinker.RequestFailedError`` whose message is
``"Request failed: <server message> for self.request_id=... and expected type
self.model_cls=..."``; a ``BadRequest`` becomes ``tinker.BadRequestError``, as an HTTP 400
does. Errors raised on the client side (your loss function, the SDK's own
checks) pass through unchanged, as they do with the SDK.
"""

from __future__ import annotations

import itertools
import warnings
from concurrent.futures import Future
from typing import Any, Callable, TypeVar

import httpx
from tinker._exceptions import BadRequestError, RequestFailedError
from tinker.lib.public_interfaces.api_future import APIFuture, AwaitableConcurrentFuture
from tinker.types.request_error_category import RequestErrorCategory

from .threads import fit_threads

T = TypeVar("T")

_request_ids = itertools.count()


class ServerRejection(Exception):
    """Bad input that Tinker's server would reject; ``str(error)`` is the server's message."""


class BadRequest(Exception):
    """Input the server refuses with HTTP 400 before queueing it (e.g. a wrong image token
    count); the SDK raises ``tinker.BadRequestError`` with ``Error code: 400 - {'detail': ...}``."""


def bad_request_error(detail: str) -> BadRequestError:
    request = httpx.Request("POST", "http://tinker-offline.invalid/api/v1/forward_backward")
    body = {"detail": detail}
    return BadRequestError(f"Error code: 400 - {body}", response=httpx.Response(400, request=request, json=body), body=body)


def request_failed(message: str, expected_type: type) -> RequestFailedError:
    """The exception the SDK's future raises when the server rejects a request."""
    request_id = f"offline-{next(_request_ids)}"
    return RequestFailedError(
        f"Request failed: {message} for self.request_id={request_id!r} "
        f"and expected type self.model_cls={expected_type!r}",
        request_id=request_id,
        category=RequestErrorCategory.User,
    )


def as_sdk_error(error: Exception, expected_type: type) -> Exception:
    """``error`` as the SDK's future would raise it: server rejections become the SDK's
    exception types, anything else is unchanged."""
    if isinstance(error, ServerRejection):
        return request_failed(str(error), expected_type)
    if isinstance(error, BadRequest):
        return bad_request_error(str(error))
    return error


def run_now(operation: Callable[[], T], expected_type: type) -> APIFuture[T]:
    """Run ``operation`` now, on the threads free to it (``threads.fit_threads``); its value
    or its error is delivered by ``.result()``."""
    fit_threads()
    future: Future[T] = Future()
    try:
        future.set_result(operation())
    except Exception as error:  # noqa: BLE001 - delivered through .result(), like Tinker
        future.set_exception(as_sdk_error(error, expected_type))
    return AwaitableConcurrentFuture(future)


class ClientFuture(AwaitableConcurrentFuture):
    """A future of a client that, like the SDK's backcompat futures, still answers the
    client's own calls, with the SDK's ``FutureWarning`` (tinker 0.38:
    ``backcompat_training_client_future.py``, ``backcompat_sampling_client_future.py``)."""

    def __init__(self, future: APIFuture[Any], client_name: str):
        super().__init__(future.future())
        self._client_name = client_name

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        warnings.warn(
            f"Using the future as the {self._client_name} is deprecated; call .result() on it, "
            f"or await it, to get the {self._client_name} first",
            FutureWarning,
            stacklevel=2,
        )
        return getattr(self.result(), name)


def client_future(operation: Callable[[], Any], client_name: str) -> ClientFuture:
    """``run_now`` for calls that create a client: a future that also acts as the client."""
    return ClientFuture(run_now(operation, object), client_name)
