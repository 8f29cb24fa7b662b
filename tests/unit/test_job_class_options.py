"""A job class's Delayed::Job options are checked when the class is defined: an option the
worker cannot honour fails the import, naming the class and the attribute."""

import math
from datetime import timedelta

import pytest

import tomqueue
from tomqueue.handler import encode_handler


@pytest.mark.parametrize(
    ("attrs", "error", "fragment"),
    [
        ({"max_run_time": math.inf}, ValueError, "Bad.max_run_time"),
        ({"max_run_time": 0}, ValueError, "Bad.max_run_time"),
        ({"max_run_time": -5}, ValueError, "Bad.max_run_time"),
        ({"max_run_time": math.nan}, ValueError, "Bad.max_run_time"),
        ({"max_run_time": timedelta(seconds=-1)}, ValueError, "Bad.max_run_time"),
        ({"max_run_time": "60"}, TypeError, "Bad.max_run_time"),
        ({"max_attempts": 0}, ValueError, "Bad.max_attempts"),
        ({"max_attempts": 2.5}, TypeError, "Bad.max_attempts"),
        ({"max_attempts": True}, TypeError, "Bad.max_attempts"),
        ({"priority": "high"}, TypeError, "Bad.priority"),
        ({"priority": 2**40}, ValueError, "Bad.priority"),
        ({"queue_name": ""}, TypeError, "Bad.queue_name"),
    ],
)
def test_bad_options_fail_at_definition(attrs, error, fragment):
    with pytest.raises(error, match=fragment.replace(".", r"\.")):
        type("Bad", (tomqueue.Job,), attrs)


def test_good_options_are_accepted():
    good = type("Good", (tomqueue.Job,), {"max_run_time": timedelta(minutes=5), "priority": -3})
    assert good.max_run_time_seconds() == 300


class Shadowing(tomqueue.Job):
    def __init__(self) -> None:
        self.reschedule_at = "soon"  # state may never replace a method

    def perform(self) -> None:
        pass


def test_state_that_would_replace_a_method_is_refused_at_enqueue():
    with pytest.raises(TypeError, match="Shadowing.reschedule_at cannot be job state"):
        encode_handler(Shadowing())
