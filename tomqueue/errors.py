"""The exception family: one root, and errors that say what to do next."""

from __future__ import annotations

from enum import StrEnum


class TomQueueError(Exception):
    """Something went wrong inside tomqueue."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigurationError(TomQueueError):
    """The settings given to tomqueue are not valid."""


class UnknownJobClassError(TomQueueError):
    """The row names a job class that is not a registered tomqueue.Job subclass.

    Import the module that defines it in the worker (``--app``), or delete the job.
    """


class HandlerDecodeError(TomQueueError):
    """The row's handler is not a valid tomqueue handler document."""


class DatabaseUnavailableError(TomQueueError):
    """PostgreSQL could not be reached."""


class BrokerUnavailableError(TomQueueError):
    """RabbitMQ could not be reached or refused the message."""


class JobNotFoundError(TomQueueError):
    """No job with that id exists."""


class JobRefusedError(TomQueueError):
    """The job failed for good without running: its class is unknown or its handler
    unreadable, or its worker died running it too often (poison) or on its last attempt.

    What an exception reporter is given for such a job; the message says which.
    """


class MessageDisposition(StrEnum):
    """What the consumer must do with a notification it could not use."""

    ACK_AND_DROP = "ack_and_drop"
    ACK_AND_REPUBLISH = "ack_and_republish"
    NACK_AND_REQUEUE = "nack_and_requeue"


class NotificationError(TomQueueError):
    """An AMQP message that cannot be acted upon; carries what to do with it."""

    disposition = MessageDisposition.ACK_AND_DROP


class MalformedNotificationError(NotificationError):
    """The AMQP message is not a tomqueue notification (foreign or corrupt); it is dropped."""


class JobTimeout(BaseException):
    """The job ran longer than its max_run_time.

    Derives from BaseException so that a job's own ``except Exception`` cannot swallow it.
    """
