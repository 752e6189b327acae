"""Errors people see: Razorpay's and the ledger's, translated where an action or entity answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from functools import wraps
from typing import Any

from homeassistant.exceptions import HomeAssistantError

from .const import DOMAIN
from .razorpay_api import RazorpayAuthError, RazorpayConnectionError, RazorpayError
from .store import StorageError


def translate(err: RazorpayError | StorageError) -> HomeAssistantError:
    """The translated error for a failed Razorpay call or a change the ledger could not store."""
    if isinstance(err, StorageError):
        key, placeholders = "storage_failed", {"error": str(err)}
    elif isinstance(err, RazorpayAuthError):
        key, placeholders = "invalid_auth", {}
    elif isinstance(err, RazorpayConnectionError):
        key, placeholders = "cannot_connect", {}
    else:
        key, placeholders = "razorpay_refused", {"error": str(err)}
    return HomeAssistantError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


def translated[**P, T](
    func: Callable[P, Awaitable[T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Decorate an action handler or entity method: Razorpay's and storage errors translated."""

    @wraps(func)
    async def handler(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await func(*args, **kwargs)
        except (RazorpayError, StorageError) as err:
            raise translate(err) from err

    return handler
