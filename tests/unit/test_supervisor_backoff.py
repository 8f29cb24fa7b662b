"""The supervisor's restart delay: back off on crash loops only, never on kills or recycling."""

import pytest

from tomqueue.worker.supervisor import next_backoff


@pytest.mark.parametrize(
    ("previous", "exit_code", "lived", "expected"),
    [
        (1.0, 1, 0.5, 2.0),  # a quick error exit: a crash loop, back off
        (16.0, 1, 0.5, 30.0),  # ... up to 30 s
        (30.0, 1, 0.5, 30.0),
        (8.0, 1, 60.0, 1.0),  # an error exit after a long life: back in a second
        (8.0, -9, 0.5, 1.0),  # SIGKILL soon after start (a kill storm, OOM): no back-off
        (1.0, -11, 0.1, 1.0),  # a segfault: the poison rule stops the job, not back-off
        (1.0, 0, 0.3, 0.0),  # a clean exit, its --max-jobs done: a fresh child at once
        (30.0, 0, 0.3, 0.0),  # ... even right after a crash loop, however short its life
        (0.0, 1, 0.5, 2.0),  # a crash loop after a recycle backs off from 2 s, not from 0
    ],
)
def test_next_backoff(previous, exit_code, lived, expected):
    assert next_backoff(previous, exit_code, lived) == expected
