"""Step time-outs: a simulator that does not answer in time ends the run, by name.

:func:`watch` wraps the ``step`` and ``get_data`` calls mosaik makes to every simulator
of a World (``simulators.step_timeout_s`` in the scenario):

- a simulator in another process (``cmd``/``connect``): the call is awaited with
  :func:`asyncio.wait_for`; a hung or stopped process then raises
  :class:`SimulatorTimeout` in mosaik's event loop, and mosaik's shutdown closes the
  connection (and terminates a process it started);
- an in-process simulator blocks the event loop, so a real-time interval timer
  (``setitimer``) interrupts the main thread with ``SIGALRM`` at the deadline, whose
  handler raises
  :class:`SimulatorTimeout` there (also from a blocking system call; a long call into
  a C library that does not return to Python is interrupted when it returns). This
  needs the World to run in the main thread; elsewhere in-process simulators are not
  watched (a warning is logged).

A simulator's steps in the first interval it runs may build its models (the DSOs build
their optimisation problems there, the market its real-time stage in its second step),
so they get :data:`FIRST_STEP_ALLOWANCE_S` on top.

A simulator process that crashes or is killed needs no time-out: its connection
closes, and the wrapper (always applied to simulators in other processes) re-raises
mosaik's bare connection error as :class:`SimulatorCrashed` naming the simulator. The
runner records either failure (``summary.json``, ``error.log``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mosaik.exceptions import ConnectionClosedError
from mosaik.proxies import LocalProxy

log = logging.getLogger(__name__)

#: Extra seconds each step of a simulator's first interval may take (model building), on
#: top of the time-out.
FIRST_STEP_ALLOWANCE_S = 180.0


class SimulatorTimeout(RuntimeError):
    """A simulator did not answer a call within the scenario's step time-out."""


class SimulatorCrashed(RuntimeError):
    """A simulator in another process closed its connection (it crashed or was killed)."""


#: What mosaik raises when a simulator's connection breaks.
_LOST = (ConnectionError, EOFError, asyncio.IncompleteReadError, ConnectionClosedError)


def _innermost(proxy: Any) -> Any:
    """Return the proxy of a simulator without mosaik's API adapters around it."""
    while hasattr(proxy, "_out"):
        proxy = proxy._out  # noqa: SLF001
    return proxy


def describe(sid: str, labels: dict[str, str]) -> str:
    """Return ``"simulator SID (LABEL)"`` or ``"simulator SID"``."""
    label = labels.get(sid)
    return f"simulator {sid} ({label})" if label else f"simulator {sid}"


@contextmanager
def watch(
    world: Any, timeout_s: float | None, interval_s: int, labels: dict[str, str]
) -> Iterator[None]:
    """Apply a time-out of ``timeout_s`` seconds to every simulator's calls while inside.

    Parameters
    ----------
    world : mosaik.World
        The World about to run (every simulator started).
    timeout_s : float or None
        Wall-clock seconds a ``step`` or ``get_data`` call may take; ``None``: no
        time-out (crashes of simulators in other processes are still named).
    interval_s : int
        mosaik time units per market interval (names the interval in the message).
    labels : dict of str to str
        Extra words per simulator id for the message, e.g. ``"partition 2: rural"``.

    Raises
    ------
    SimulatorTimeout
        From inside the World's run, e.g. "simulator Feeder-0 (partition 0: rural) did
        not answer step at interval 17 (mosaik time 15302) within 30 s".
    SimulatorCrashed
        From inside the World's run, if a simulator's process closed its connection.

    """
    main = threading.current_thread() is threading.main_thread()
    alarm = _Alarm() if main and timeout_s is not None else None
    sims = world._async_world.sims  # noqa: SLF001 - the runners mosaik steps
    unwatched = []
    for sid, runner in sims.items():
        proxy = _innermost(runner._proxy)  # noqa: SLF001
        local = isinstance(proxy, LocalProxy)
        if local and alarm is None:
            if timeout_s is not None:
                unwatched.append(sid)
            continue
        for method in ("step", "get_data"):
            closed = None if local else getattr(proxy, "_reader_task", None)
            wrapped = _wrap(
                getattr(runner, method), method, sid, closed, alarm, timeout_s, interval_s, labels
            )
            setattr(runner, method, wrapped)
    if unwatched:
        log.warning("not in the main thread: no step time-out for in-process %s", unwatched)
    if alarm is None:
        yield
        return
    with alarm.installed():
        yield


def _wrap(  # noqa: PLR0913 - one closure per simulator method
    call: Any,
    method: str,
    sid: str,
    closed: asyncio.Task | None,
    alarm: _Alarm | None,
    timeout_s: float | None,
    interval_s: int,
    labels: dict[str, str],
) -> Any:
    def when(args: tuple[Any, ...]) -> str:
        if method == "step" and args:
            return f"{method} at interval {int(args[0]) // interval_s} (mosaik time {args[0]})"
        return method

    def message(args: tuple[Any, ...]) -> str:
        return f"{describe(sid, labels)} did not answer {when(args)} within {timeout_s:g} s"

    first_interval: list[int] = []  # the interval of this simulator's first step

    async def watched(*args: Any, **kwargs: Any) -> Any:
        # every step of the first interval it steps in gets the allowance: models are
        # built across that interval's phases (e.g. the market's real-time stage, the
        # DSO's award), not only in its first call
        first = False
        if method == "step" and args:
            interval = int(args[0]) // interval_s
            if not first_interval:
                first_interval.append(interval)
            first = interval == first_interval[0]
        limit = (timeout_s or 0.0) + (FIRST_STEP_ALLOWANCE_S if first else 0.0)
        if alarm is not None and closed is None:  # in-process
            with alarm.armed(limit, message(args)):
                return await call(*args, **kwargs)
        lost = (
            f"{describe(sid, labels)} closed its connection during {when(args)} "
            "(its process crashed or was killed)"
        )
        task = asyncio.ensure_future(call(*args, **kwargs))
        # mosaik's reader of the simulator's requests ends when the connection closes;
        # a call then pending would wait for ever
        waits = {task} if closed is None else {task, closed}
        done, _ = await asyncio.wait(
            waits, timeout=limit if timeout_s else None, return_when=asyncio.FIRST_COMPLETED
        )
        if task in done:
            try:
                return task.result()
            except _LOST as exc:
                raise SimulatorCrashed(f"{lost}: {type(exc).__name__}: {exc}") from exc
        task.cancel()
        if closed is not None and closed in done:
            raise SimulatorCrashed(lost)
        raise SimulatorTimeout(message(args))

    return watched


class _Alarm:
    """Deadlines of the in-process calls now running, enforced by one ``ITIMER_REAL`` timer.

    The timer is set to the nearest deadline; its ``SIGALRM`` runs the handler in the
    main thread, which raises :class:`SimulatorTimeout` for a call past its deadline
    (or re-arms for the next). Arming and disarming are two system calls (about 1 µs),
    where a timer thread per call cost about 0.2 ms.
    """

    def __init__(self) -> None:
        self._active: dict[int, tuple[float, str]] = {}  # call -> (deadline, message)
        self._token = 0

    def _handler(self, signum: int, frame: Any) -> None:
        now = time.monotonic()
        due = sorted(v for v in self._active.values() if v[0] <= now + 1e-3)
        if due:
            raise SimulatorTimeout(due[0][1])
        self._rearm()

    def _rearm(self) -> None:
        if self._active:
            nearest = min(deadline for deadline, _ in self._active.values())
            signal.setitimer(signal.ITIMER_REAL, max(nearest - time.monotonic(), 1e-3))
        else:
            signal.setitimer(signal.ITIMER_REAL, 0.0)

    @contextmanager
    def installed(self) -> Iterator[None]:
        previous = signal.signal(signal.SIGALRM, self._handler)
        try:
            yield
        finally:
            self._active.clear()
            signal.setitimer(signal.ITIMER_REAL, 0.0)
            signal.signal(signal.SIGALRM, previous)

    @contextmanager
    def armed(self, timeout_s: float, message: str) -> Iterator[None]:
        self._token += 1
        token = self._token
        self._active[token] = (time.monotonic() + timeout_s, message)
        self._rearm()
        try:
            yield
        finally:
            self._active.pop(token, None)  # a late signal raises nothing
            self._rearm()
