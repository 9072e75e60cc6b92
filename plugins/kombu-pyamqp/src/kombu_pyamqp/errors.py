"""Refused logins as kombu-core's and the ``amqp`` library's errors at once.

Bad credentials (the driver's :exc:`amqp.exceptions.AccessRefused`) and a
virtual host the user may not enter (:exc:`amqp.exceptions.NotAllowed`) are
raised as kombu's :exc:`~kombu.exceptions.AccessRefused` with a message
saying what to fix.
The classes here are both, so ``except`` clauses written for either catch
them, and the driver's ``reply_code`` and ``reply_text`` are kept.
"""

from __future__ import annotations

from amqp import exceptions as amqp_exceptions
from kombu.exceptions import AccessRefused

__all__ = ("LoginRefused", "VirtualHostRefused", "refused_as")


class LoginRefused(AccessRefused, amqp_exceptions.AccessRefused):  # type: ignore[misc]
    """The broker refused the login (the driver's ``AccessRefused``, code 403)."""

    def __str__(self) -> str:
        return str(self.reply_text)


class VirtualHostRefused(AccessRefused, amqp_exceptions.NotAllowed):  # type: ignore[misc]
    """The broker refused the virtual host (the driver's ``NotAllowed``, code 530)."""

    def __str__(self) -> str:
        return str(self.reply_text)


def refused_as(exc: BaseException, message: str) -> AccessRefused:
    """An :exc:`AccessRefused` with ``message``, also of ``exc``'s driver class."""
    cls: type[AccessRefused]
    if isinstance(exc, amqp_exceptions.NotAllowed):
        cls = VirtualHostRefused
    elif isinstance(exc, amqp_exceptions.AccessRefused):
        cls = LoginRefused
    else:
        return AccessRefused(message)
    refused = cls(message, getattr(exc, "method_sig", None), getattr(exc, "method_name", None),
                  getattr(exc, "reply_code", None))
    return refused
