"""Engine calls: the time comes in as an argument and is forgotten after.

Every public entry point of :class:`~dlep.fsm.session.Session` runs inside
``with clock.at(now, api)``; the application's calls are wrapped by
:func:`api_call`, which also refuses them in the wrong role or state.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

if TYPE_CHECKING:
    from .session import Role, Session

__all__ = ["Clock", "api_call"]


class Clock:
    """The time of the engine call in progress; None between calls.

    Every public entry point runs inside ``with clock.at(now, api)``: time
    comes in as an argument and is forgotten when the call returns, so
    nothing can act on a stale time. Calls nest (an extension hook that
    sends from inside a received message uses the message's time).
    """

    __slots__ = ("_stack", "api", "now")

    def __init__(self) -> None:
        self.now: float | None = None
        #: True while the application's call runs (its output gets the
        #: extensions' sender-side checks).
        self.api = False
        self._stack: list[tuple[float | None, bool]] = []

    def at(self, now: float, api: bool) -> Clock:
        """Enter a call at ``now`` (``api``: the application's own call)."""
        self._stack.append((self.now, self.api))
        self.now = now
        self.api = api
        return self

    def __enter__(self) -> Clock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.now, self.api = self._stack.pop()


P = ParamSpec("P")
R = TypeVar("R")


def api_call(
    role: Role | None = None,
) -> Callable[[Callable[Concatenate[Session, P], R]], Callable[Concatenate[Session, P], R]]:
    """An application call: refused in the wrong role or outside In-Session,
    run at its ``now`` (a keyword every API method takes), with the
    extensions' sender-side rules on what it sends."""

    def wrap(fn: Callable[Concatenate[Session, P], R]) -> Callable[Concatenate[Session, P], R]:
        what = fn.__name__

        @functools.wraps(fn)
        def call(self: Session, /, *args: P.args, **kwargs: P.kwargs) -> R:
            now = kwargs.get("now")
            if type(now) is not float and not isinstance(now, int | float):
                raise TypeError(f"{what}() needs the time: now=<seconds> (got {now!r})")
            self.require_call(role, what)
            clock = self.clock_state
            saved_now, saved_api = clock.now, clock.api
            clock.now, clock.api = now, True
            try:
                return fn(self, *args, **kwargs)
            finally:
                clock.now, clock.api = saved_now, saved_api

        return call

    return wrap
