"""Dramatiq 2 with its RabbitMQ broker (publisher confirms on, for a durable comparison)."""

import os

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from bench.results import insert_result as body

broker = RabbitmqBroker(url=os.environ["BENCH_AMQP_URL"], confirm_delivery=True)
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="bench-dramatiq", max_retries=0)
def insert_result(key: int, sent: float) -> None:
    body(key, sent)
