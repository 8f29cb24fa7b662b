"""Connecting to RabbitMQ: parameters from the settings, and what a broker failure is."""

from __future__ import annotations

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingConnection

from tomqueue.errors import BrokerUnavailableError
from tomqueue.settings import Settings, mask_url, split_amqp_urls

# Everything pika raises when the broker is unreachable, the connection or channel dies,
# or a mandatory/confirmed publish is refused.
BROKER_ERRORS = (pika.exceptions.AMQPError, OSError)
# ... and the same, plus our own wrapper: what callers of connect/publish catch
BROKER_FAILURES = (BrokerUnavailableError, pika.exceptions.AMQPError, OSError)


def connection_parameters(settings: Settings) -> list[pika.URLParameters]:
    """One set of parameters per URL: TOMQUEUE_AMQP_URL may list cluster nodes, comma
    separated, and connecting tries them in turn. Split with ``split_amqp_urls``, which
    leaves a comma inside a password alone."""
    timeout = settings.publish_timeout.total_seconds()
    result = []
    for url in split_amqp_urls(settings.amqp_url):
        params = pika.URLParameters(url)
        params.connection_attempts = 1
        params.socket_timeout = timeout
        params.blocked_connection_timeout = max(timeout, 30.0)
        result.append(params)
    return result


def connect(settings: Settings) -> BlockingConnection:
    """Open a connection, or raise BrokerUnavailableError naming the URL without password."""
    try:
        return pika.BlockingConnection(connection_parameters(settings))
    except BROKER_ERRORS as exc:
        raise BrokerUnavailableError(
            f"RabbitMQ at {mask_url(settings.amqp_url)} is unreachable: {type(exc).__name__} {exc}"
        ) from exc
