"""A job longer than RabbitMQ's consumer_timeout completes once, its channel intact.

Runs against an extra RabbitMQ node (started by bin/rabbitmq-nodes) whose consumer_timeout
is 3 s and which checks it every second, standing in for the default 30 minutes.
"""

import subprocess

import pika
import pytest

import tomqueue
from tests.conftest import ROOT, wait_until
from tests.jobs import Record, Slow

pytestmark = pytest.mark.faults

NODE, PORT = "tqshort", 5690
URL = f"amqp://guest:guest@127.0.0.1:{PORT}/%2F"


@pytest.fixture(scope="module")
def short_timeout_broker():
    subprocess.run([ROOT / "bin" / "rabbitmq-nodes", "start", NODE, str(PORT), "3000"], check=True)
    yield URL
    subprocess.run([ROOT / "bin" / "rabbitmq-nodes", "delete", NODE], check=False)


def test_consumer_timeout_really_closes_channels_on_this_broker(short_timeout_broker):
    connection = pika.BlockingConnection(pika.URLParameters(short_timeout_broker))
    channel = connection.channel()
    channel.queue_declare("tq-timeout-probe", auto_delete=True)
    channel.basic_publish("", "tq-timeout-probe", b"x")
    channel.basic_get("tq-timeout-probe")
    wait_until(lambda: connection.process_data_events(0.2) or not channel.is_open, timeout=15)
    connection.close()


def test_job_longer_than_consumer_timeout_completes_once(tq, fast_env, short_timeout_broker):
    tomqueue.configure(amqp_url=short_timeout_broker)
    env = fast_env | {"TOMQUEUE_AMQP_URL": short_timeout_broker, "TOMQUEUE_EARLY_ACK_AFTER": "1"}
    long_id = tomqueue.enqueue(Slow("long", seconds=8))
    worker = tq.spawn("worker", env=env)
    wait_until(lambda: tq.job(long_id) is None, timeout=30, message="long job done")
    assert tq.count_runs("long", "start") == 1 and tq.count_runs("long", "end") == 1
    after = tomqueue.enqueue(Record("after-long"))
    wait_until(lambda: tq.job(after) is None, timeout=10)
    assert worker.poll() is None
