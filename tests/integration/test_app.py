"""The composition root on the real servers: one App per worker process, shared by jobs."""

from __future__ import annotations

import tomqueue
from tests.app_identity import EnqueuesChild
from tests.conftest import stop_process, wait_until


def test_a_job_enqueueing_from_a_worker_uses_the_workers_app(tq):
    worker = tq.spawn("worker", "--app", "tests.jobs", "--app", "tests.app_identity")
    tomqueue.enqueue(EnqueuesChild("nest"))
    wait_until(lambda: tq.count_runs("nest-child") == 1, timeout=30, message="the child ran")
    setup = tq.sql("SELECT detail, pid FROM test_runs WHERE label = 'setup'")
    parent = tq.sql("SELECT detail, pid FROM test_runs WHERE label = 'nest'")
    assert len(setup) == 1, "tomqueue_setup is called once per process"
    # same process, same App object, same engine and publisher: one set of connections
    assert parent == setup
    assert stop_process(worker) == 0
    assert tq.pending_count() == 0


def test_edit_worker_stack_reaches_an_in_process_worker(tq, run_worker):
    from tests.jobs import Record
    from tomqueue.default_app import default_app
    from tomqueue.worker.layers import LockJob

    seen: list[int | None] = []

    class Spy:
        def __call__(self, ctx, call_next):
            seen.append(ctx.job_id)
            return call_next(ctx)

    default_app().edit_worker_stack(lambda stack: stack.insert_before(LockJob, Spy()))
    job_id = tomqueue.enqueue(Record("spied"))
    run_worker()
    wait_until(lambda: tq.count_runs("spied") == 1)
    assert seen == [job_id]
