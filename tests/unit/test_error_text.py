"""last_error text is always storable in PostgreSQL and bounded, whatever user code raised."""

import pytest

from tomqueue.error_text import MAX_ERROR_CHARS, describe_error, storable


class BrokenStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no string for you")


def raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


@pytest.mark.parametrize(
    ("exc", "fragment"),
    [
        (ValueError("plain"), "ValueError: plain"),
        (ValueError("nul\x00byte"), "nul\\x00byte"),
        (ValueError("lone \udc80 surrogate"), "lone \\udc80 surrogate"),
        (BrokenStr(), "<str() of the exception raised RuntimeError>"),
        (SystemExit(3), "SystemExit: 3"),
        (KeyboardInterrupt(), "KeyboardInterrupt"),
    ],
)
def test_describe_error_is_total_and_storable(exc, fragment):
    text = describe_error(raised(exc))
    assert fragment in text
    assert "\x00" not in text
    text.encode("utf-8")  # no lone surrogate left


def test_long_text_keeps_head_and_tail():
    text = "HEAD" + "x" * (MAX_ERROR_CHARS * 3) + "TAIL"
    kept = storable(text)
    assert len(kept) <= MAX_ERROR_CHARS
    assert kept.startswith("HEAD") and kept.endswith("TAIL")
    assert "characters cut" in kept


def test_deep_recursion_traceback_is_bounded():
    def down(n: int) -> int:
        return down(n + 1)

    try:
        down(0)
    except RecursionError as exc:
        text = describe_error(exc)
    assert len(text) <= MAX_ERROR_CHARS
    assert text.startswith("RecursionError")
