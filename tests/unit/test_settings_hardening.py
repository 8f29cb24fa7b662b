"""Hostile configuration: URLs that hide passwords badly, durations that are not durations,
and database drivers tomqueue cannot work with. Every case here was accepted, crashed or
leaked a password before the settings were hardened."""

from datetime import timedelta
from urllib.parse import quote

import pytest

from tomqueue.broker import connection_parameters
from tomqueue.errors import ConfigurationError
from tomqueue.settings import (
    UNPARSEABLE_URL,
    Settings,
    mask_url,
    settings_from_env,
    split_amqp_urls,
)

# Each password is made of two tokens around a nasty character, so that a leak of either
# half shows: "Qx7" and "Vb9" must never appear in a masked URL.
NASTY = [",", "/", "?", "#", "@", ":", "%", "&", "=", ";", " ", "@@", "/?#@,"]
BASES = [
    "postgresql+psycopg://app:{pw}@db.example:5432/app",
    "postgresql://app:{pw}@db.example/app?sslmode=require",
    "amqp://app:{pw}@mq.example:5672/%2F",
    "amqps://app:{pw}@mq.example/vhost?heartbeat=30",
    "amqp://guest:guest@mq1.example/%2F,amqp://app:{pw}@mq2.example/%2F",
    "amqp://app:{pw}@mq1.example/%2F, amqps://app:{pw}@mq2.example/%2F",
    "postgresql+psycopg://db.example/app?password={pw}",
    "postgresql+psycopg://app@db.example/app?sslmode=require&PassWord={pw}",
    "amqp://mq.example/%2F?heartbeat=30&pwd={pw}",
    "amqp://mq.example/%2F?PASS={pw}&heartbeat=30",
    "postgresql+psycopg://app:{pw}@db.example/app?pwd={pw}",
]
LEAKY = [
    base.format(pw=password)
    for base in BASES
    for char in NASTY
    for password in (f"Qx7{char}Vb9", quote(f"Qx7{char}Vb9", safe=""))
]


@pytest.mark.parametrize("url", LEAKY)
def test_no_part_of_a_password_survives_masking(url):
    masked = mask_url(url)
    assert "Qx7" not in masked and "Vb9" not in masked, masked
    assert "***" in masked or masked == UNPARSEABLE_URL


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("amqp://guest:secret@host:5672/%2F", "amqp://guest:***@host:5672/%2F"),
        ("postgresql+psycopg://u:secret@h:5432/db", "postgresql+psycopg://u:***@h:5432/db"),
        ("postgresql://h/db", "postgresql://h/db"),
        ("amqp://u:a,b@h1/%2F,amqp://u:c@h2/%2F", "amqp://u:***@h1/%2F,amqp://u:***@h2/%2F"),
        (
            "amqp://u:p@h/%2F?heartbeat=30&password=x",
            "amqp://u:***@h/%2F?heartbeat=30&password=***",
        ),
        (
            "postgresql+psycopg://u:p@ss@h/db?pwd=x&sslmode=require",
            "postgresql+psycopg://u:***@h/db?pwd=***&sslmode=require",
        ),
    ],
)
def test_masked_urls_stay_readable(url, masked):
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    "url",
    [
        "Qx7Vb9",
        "db.example:5432 password Qx7Vb9",
        "postgresql://u:Qx7Vb9@h:not-a-port/db",
        "amqp://u:Qx7Vb9@[::1/%2F",
        "://u:Qx7Vb9@h",
        "",
    ],
)
def test_an_unparseable_url_is_never_echoed(url):
    assert mask_url(url) == UNPARSEABLE_URL


@pytest.mark.parametrize(
    ("url", "nodes"),
    [
        ("amqp://a/%2F", ["amqp://a/%2F"]),
        ("amqp://a/%2F,amqp://b/%2F", ["amqp://a/%2F", "amqp://b/%2F"]),
        (" amqp://a , AMQPS://b ,amqp://c ", ["amqp://a", "AMQPS://b", "amqp://c"]),
        ("amqp://u:p,w@a/%2F,amqp://u:p%2Cw@b/%2F", ["amqp://u:p,w@a/%2F", "amqp://u:p%2Cw@b/%2F"]),
        ("amqp://u:,,@a/%2F?x=1,2", ["amqp://u:,,@a/%2F?x=1,2"]),
    ],
)
def test_cluster_nodes_split_only_where_a_url_starts(url, nodes):
    assert split_amqp_urls(url) == nodes


def test_a_comma_in_a_broker_password_reaches_pika_whole():
    settings = Settings(amqp_url="amqp://u:pa,ss@h1:5672/%2F,amqp://u:pa%2Css@h2:5673/%2F")
    params = connection_parameters(settings)
    assert [p.host for p in params] == ["h1", "h2"]
    assert [p.credentials.password for p in params] == ["pa,ss", "pa,ss"]


@pytest.mark.parametrize("url", ["redis://h/0", "http://h", "h:5672", "amqp://a,redis://b"])
def test_a_broker_url_that_is_not_amqp_is_refused(url):
    with pytest.raises(ConfigurationError, match=r"TOMQUEUE_AMQP_URL.*amqp://"):
        Settings(amqp_url=url)


DURATION_VARIABLES = [
    "TOMQUEUE_DEFERRED_HORIZON",
    "TOMQUEUE_DEFERRED_POLL_INTERVAL",
    "TOMQUEUE_REPUBLISH_AFTER",
    "TOMQUEUE_SWEEP_INTERVAL",
    "TOMQUEUE_EARLY_ACK_AFTER",
    "TOMQUEUE_ORPHAN_GRACE",
    "TOMQUEUE_LEASE_TIMEOUT",
    "TOMQUEUE_TIMEOUT_GRACE",
]


@pytest.mark.parametrize("variable", DURATION_VARIABLES)
@pytest.mark.parametrize(
    "value", ["nan", "NaN", "inf", "-inf", "0", "-1", "1e-9", "1e300", "ten", "5s"]
)
def test_a_duration_variable_that_is_not_a_sane_duration_is_refused(variable, value):
    with pytest.raises(ConfigurationError) as refused:
        settings_from_env({variable: value})
    message = str(refused.value)
    assert message.startswith(f"{variable} must be a finite number of seconds ")
    assert "at most" in message and message.endswith(f"got {value!r}")


def test_the_refusal_says_the_allowed_range():
    with pytest.raises(ConfigurationError) as refused:
        settings_from_env({"TOMQUEUE_SWEEP_INTERVAL": "nan"})
    assert str(refused.value) == (
        "TOMQUEUE_SWEEP_INTERVAL must be a finite number of seconds greater than 0 "
        "(at most 86400), got 'nan'"
    )


def test_good_duration_variables_become_timedeltas():
    settings = settings_from_env(
        {
            "TOMQUEUE_SWEEP_INTERVAL": "0.5",
            "TOMQUEUE_LEASE_TIMEOUT": "2",
            "TOMQUEUE_MAX_CRASHES": "3",
        }
    )
    assert settings.sweep_interval == timedelta(seconds=0.5)
    assert settings.lease_timeout == timedelta(seconds=2)
    assert settings.max_crashes == 3


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sweep_interval", timedelta(0)),
        ("sweep_interval", timedelta(seconds=-1)),
        ("orphan_grace", timedelta(days=2)),
        ("deferred_horizon", float("nan")),
        ("republish_after", float("inf")),
        ("early_ack_after", -5),
        ("publish_timeout", 0),
        ("timeout_grace", True),
        ("deferred_poll_interval", "1"),
        ("lease_timeout", timedelta(seconds=1.5)),
        ("lease_timeout", 7200),
    ],
)
def test_a_bad_duration_given_in_code_is_refused_by_name(field, value):
    with pytest.raises(ConfigurationError, match=rf"^{field} must be a "):
        Settings().replace(**{field: value})


def test_numbers_given_in_code_are_seconds():
    settings = Settings().replace(sweep_interval=0.25, lease_timeout=3)
    assert settings.sweep_interval == timedelta(seconds=0.25)
    assert settings.lease_timeout == timedelta(seconds=3)


@pytest.mark.parametrize("value", ["0", "-2", "3.5", "nan", "many"])
def test_max_crashes_from_the_environment_must_be_a_whole_number(value):
    with pytest.raises(ConfigurationError, match=r"^TOMQUEUE_MAX_CRASHES must be a whole number"):
        settings_from_env({"TOMQUEUE_MAX_CRASHES": value})


@pytest.mark.parametrize("value", [0, -1, 2.0, True, None])
def test_max_crashes_given_in_code_must_be_a_whole_number(value):
    with pytest.raises(ConfigurationError, match=r"^max_crashes must be a whole number"):
        Settings(max_crashes=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("PostgreSQL://h/db", "postgresql+psycopg://h/db"),
        ("postgresql+psycopg://h/db", "postgresql+psycopg://h/db"),
        ("postgresql:///db?host=/run/postgresql", "postgresql+psycopg:///db?host=/run/postgresql"),
    ],
)
def test_a_database_url_without_a_driver_gets_psycopg(url, normalised):
    assert Settings(database_url=url).database_url == normalised
    assert settings_from_env({"TOMQUEUE_DATABASE_URL": url}).database_url == normalised


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg2://u:Qx7Vb9@h/db",
        "postgresql+asyncpg://u:Qx7Vb9@h/db",
        "postgresql+pg8000://u:Qx7Vb9@h/db",
        "postgresql+psycopg_async://u:Qx7Vb9@h/db",
        "mysql+pymysql://u:Qx7Vb9@h/db",
        "sqlite:///jobs.db",
    ],
)
def test_another_database_driver_is_refused_with_what_to_write(url):
    with pytest.raises(ConfigurationError) as refused:
        Settings(database_url=url)
    message = str(refused.value)
    assert "TOMQUEUE_DATABASE_URL" in message and "postgresql+psycopg://" in message
    assert "Qx7Vb9" not in message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://u:Qx7@Vb9@h/db",
        "postgresql+psycopg://u:Qx7@h:port/db",
        "h:5432/db",
    ],
)
def test_a_database_url_psycopg_would_misread_is_refused_without_its_password(url):
    with pytest.raises(ConfigurationError, match="TOMQUEUE_DATABASE_URL") as refused:
        Settings(database_url=url)
    assert "Qx7" not in str(refused.value) and "Vb9" not in str(refused.value)
