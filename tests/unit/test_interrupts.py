"""elfcost.interrupts_deferred: SIGINT and SIGTERM inside are recorded, and handed to the
handler in place on leaving (the command line's raises), or dropped; the scan's pool waits
under it, so no signal unwinds from inside concurrent.futures' lock-taking code."""

from __future__ import annotations

import os
import signal
from types import FrameType

import pytest

import elfcost


class Unwound(Exception):
    pass


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Unwound(signum)


@pytest.fixture
def handler() -> object:
    old = signal.signal(signal.SIGTERM, _raise)
    yield
    signal.signal(signal.SIGTERM, old)


@pytest.mark.usefixtures("handler")
def test_a_signal_inside_is_recorded_then_raised_on_leaving() -> None:
    reached = False
    with pytest.raises(Unwound), elfcost.interrupts_deferred() as pending:
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pthread_sigmask(signal.SIG_BLOCK, set())  # a call: the handler has run
        assert pending == [signal.SIGTERM]
        reached = True  # not unwound from here
    assert reached
    assert signal.getsignal(signal.SIGTERM) is _raise


@pytest.mark.usefixtures("handler")
def test_while_unwinding_one_more_is_dropped() -> None:
    with elfcost.interrupts_deferred(reraise=False) as pending:
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pthread_sigmask(signal.SIG_BLOCK, set())
    assert pending == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is _raise
