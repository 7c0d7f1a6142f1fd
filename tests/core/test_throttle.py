"""The process-local window behind "ask for a fold / a seal at most once a window"."""
import time

from rolloutops.throttle import ProcessWindow


def test_a_window_lets_one_caller_act_until_it_passes_or_is_reset():
    window = ProcessWindow()
    assert window.open(0.2) is True
    assert window.open(0.2) is False  # shut: the first caller's act covers this one
    window.reset()  # that act failed: the next caller tries again
    assert window.open(0.05) is True
    time.sleep(0.06)
    assert window.open(0.05) is True
