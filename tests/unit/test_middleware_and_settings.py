from datetime import timedelta

import pytest

import tomqueue
from tomqueue.enqueue.stack import default_enqueue_stack
from tomqueue.errors import ConfigurationError
from tomqueue.middleware import Chain
from tomqueue.priority import PriorityLevel, level_for
from tomqueue.settings import Settings, mask_url, settings_from_env


class Tag:
    def __init__(self, name):
        self.name = name

    def __call__(self, ctx, call_next):
        ctx.append(f"{self.name}>")
        result = call_next(ctx)
        ctx.append(f"<{self.name}")
        return result


class A(Tag):
    pass


class B(Tag):
    pass


class C(Tag):
    pass


def test_chain_wraps_in_order_and_is_editable():
    chain = Chain([A("a"), C("c")])
    chain.insert_before(C, B("b"))
    trace: list[str] = []
    assert chain.invoke(trace, lambda ctx: "done") == "done"
    assert trace == ["a>", "b>", "c>", "<c", "<b", "<a"]
    chain.remove("B")
    chain.insert_after("C", B("z"))
    chain.prepend(Tag("first"))
    assert chain.names() == ["Tag", "A", "C", "B"]
    with pytest.raises(KeyError):
        chain.remove("Nope")


def test_default_enqueue_stack_is_visible():
    assert default_enqueue_stack().names() == [
        "Validate",
        "TraceEnqueue",
        "Persist",
        "PublishAfterCommit",
    ]


def test_env_precedence_and_unknown_keys():
    settings = settings_from_env(
        {"TOMQUEUE_PREFIX": "app1", "TOMQUEUE_DATABASE_URL": "postgresql://x/y"}
    )
    assert settings.prefix == "app1" and settings.database_url == "postgresql+psycopg://x/y"
    assert settings.replace(prefix="app2").prefix == "app2"
    with pytest.raises(ConfigurationError, match="valid: .*prefix"):
        settings.replace(prefx="oops")
    assert Settings().deferred_horizon == timedelta(seconds=60)


def test_priority_map_validation_and_default_level():
    with pytest.raises(ConfigurationError):
        Settings(priority_map={1: "high"})  # type: ignore[dict-item]
    mapping = {1: tomqueue.HIGH_PRIORITY, 9: tomqueue.BULK_PRIORITY}
    assert level_for(1, mapping) is PriorityLevel.HIGH
    assert level_for(5, mapping) is PriorityLevel.NORMAL


def test_urls_are_masked():
    assert mask_url("amqp://guest:secret@host:5672/%2F") == "amqp://guest:***@host:5672/%2F"
    assert "secret" not in mask_url("postgresql+psycopg://u:secret@h/db")
    assert mask_url("postgresql://h/db") == "postgresql://h/db"
