"""The web dashboard: ``create_app()`` returns it as an ASGI app; ``tomqueue dashboard``
serves it. It needs the ``dashboard`` extra (``pip install 'tomqueue[dashboard]'``).

Lazy on purpose: importing ``tomqueue.dashboard`` loads nothing of Starlette until
``create_app`` is called, and then says what to install if it is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["create_app"]

MISSING = (
    "the tomqueue dashboard needs its extra packages: pip install 'tomqueue[dashboard]' "
    "(missing: {name})"
)


def create_app(*args: Any, **kwargs: Any) -> Starlette:
    """The dashboard as an ASGI app; see ``tomqueue.dashboard.web.create_app``."""
    try:
        from tomqueue.dashboard.web import create_app as build
    except ImportError as exc:
        raise ImportError(MISSING.format(name=exc.name)) from exc
    return build(*args, **kwargs)
