"""Quorum queues on a 3-node RabbitMQ cluster on this machine: kill a node mid-stream,
lose no job."""

import subprocess
import threading
import time

import pytest

import tomqueue
from tests.conftest import ROOT, wait_until
from tests.jobs import Record

pytestmark = pytest.mark.faults

PREFIX, NODES, BASE_PORT = "tqc", 3, 5681
URLS = ",".join(f"amqp://guest:guest@127.0.0.1:{BASE_PORT + i}/%2F" for i in range(NODES))


@pytest.fixture(scope="module")
def cluster():
    nodes = ROOT / "bin" / "rabbitmq-nodes"
    subprocess.run([nodes, "cluster", PREFIX, str(NODES), str(BASE_PORT)], check=True, timeout=300)
    yield URLS
    for i in range(1, NODES + 1):
        subprocess.run([nodes, "delete", f"{PREFIX}{i}"], check=False, timeout=120)


def test_killing_a_node_mid_stream_loses_no_job(tq, fast_env, cluster):
    tomqueue.configure(amqp_url=cluster, quorum_queues=True)
    env = fast_env | {"TOMQUEUE_AMQP_URL": cluster, "TOMQUEUE_QUORUM_QUEUES": "1"}
    tomqueue.enqueue(Record("warm-up"))  # declares the quorum queues across the cluster
    tq.spawn("worker", "--concurrency", "2", env=env)
    tq.spawn("deferred", env=env)
    wait_until(lambda: tq.count_runs("warm-up") == 1, timeout=30)
    labels = [f"c{n}" for n in range(300)]

    def produce():
        for label in labels:
            tomqueue.enqueue(Record(label))
            time.sleep(0.01)

    producer = threading.Thread(target=produce)
    producer.start()
    wait_until(
        lambda: tq.scalar("SELECT count(*) FROM test_runs WHERE label LIKE 'c%%'") >= 80, timeout=30
    )
    subprocess.run([ROOT / "bin" / "rabbitmq-nodes", "kill", f"{PREFIX}1"], check=True)
    producer.join(120)
    wait_until(lambda: tq.pending_count() == 0, timeout=90, message="every job ran")
    runs = dict(
        tq.sql("SELECT label, count(*) FROM test_runs WHERE label LIKE 'c%%' GROUP BY label")
    )
    missing = [label for label in labels if label not in runs]
    assert missing == []
    assert all(count == 1 for count in runs.values()), "a job ran twice"
