"""WorkContext: each stage's result is typed and never None once its stage has run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.jobs import Record
from tomqueue.priority import NORMAL_PRIORITY
from tomqueue.wire import Notification
from tomqueue.worker.context import LayerOrderError, WorkContext


@pytest.mark.parametrize(
    "stage, message",
    [("notification", "inside Pop"), ("lock", "inside LockJob"), ("job", "inside LockJob")],
)
def test_asking_for_a_stage_before_it_ran_names_the_layer_it_needs(stage, message):
    ctx = WorkContext(worker_name="w", lease_key=1)
    with pytest.raises(LayerOrderError, match=message):
        getattr(ctx, stage)


def test_stage_results_once_set_and_the_log_extra_before_and_after():
    ctx = WorkContext(worker_name="w", lease_key=1)
    assert ctx.job_id is None and ctx.log_extra()["job_class"] is None
    assert ctx.locked_by == "w"
    ctx.notification = Notification(
        job_id=7, digest="ab", level=NORMAL_PRIORITY, run_at=datetime.now(UTC)
    )
    ctx.job = Record("x")
    assert ctx.job_id == 7 and ctx.job.label == "x"
    assert ctx.log_extra()["job_class"] == Record.class_name()
