import pytest

from tomqueue.errors import HandlerDecodeError, UnknownJobClassError
from tomqueue.handler import decode_handler, encode_handler, handler_class_name
from tomqueue.job import Job, JobRegistry


class Invoice(Job):
    def __init__(self, invoice_id: int, tags: list[str] | None = None) -> None:
        self.invoice_id = invoice_id
        self.tags = tags or []

    def perform(self) -> None:
        pass


def test_round_trip_keeps_state_without_calling_init():
    job = decode_handler(encode_handler(Invoice(42, ["a"])))
    assert isinstance(job, Invoice)
    assert vars(job) == {"invoice_id": 42, "tags": ["a"]}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (object(), "Invoice.tags holds a object"),
        ({1: "x"}, "key 1"),
        (float("nan"), "JSON cannot hold"),
        ((1, 2), "holds a tuple"),
        ([{"deep": {1, 2}}], "Invoice.tags[0]['deep'] holds a set"),
    ],
)
def test_unserialisable_state_names_the_attribute(value, fragment):
    job = Invoice(1)
    job.tags = value
    with pytest.raises(TypeError, match=None) as info:
        encode_handler(job)
    assert fragment in str(info.value)


def test_unknown_class_is_refused_without_importing():
    handler = '{"v":1,"class":"os.system","state":{}}'
    with pytest.raises(UnknownJobClassError, match="not registered"):
        decode_handler(handler)


def test_a_registered_name_in_an_empty_registry_is_unknown():
    with pytest.raises(UnknownJobClassError):
        decode_handler(encode_handler(Invoice(1)), JobRegistry())


@pytest.mark.parametrize(
    "handler", ["not json", "[1]", '{"class": 3, "state": {}}', '{"class": "x"}']
)
def test_undecodable_handlers(handler):
    with pytest.raises(HandlerDecodeError):
        decode_handler(handler)


def test_class_name_for_listings():
    assert handler_class_name(encode_handler(Invoice(1))).endswith("test_handler.Invoice")
    assert handler_class_name("garbage") == "<undecodable>"


def test_subclassing_registers_and_defaults_follow_delayed_job():
    assert Invoice.max_attempts == 25
    assert Invoice.max_run_time_seconds() == 4 * 3600
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert Invoice(1).reschedule_at(now, 2) == now + timedelta(seconds=2**4 + 5)
