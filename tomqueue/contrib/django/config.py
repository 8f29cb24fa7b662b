"""tomqueue's settings for a TomQueueBackend, from Django's settings.

``TASKS[alias]["OPTIONS"]`` may hold:

- ``DATABASE``: the Django database alias the rows are written through (``"default"``);
- ``DATABASE_URL``: the SQLAlchemy URL tomqueue's own connections use (workers, the
  deferred manager, announcements). Default: derived from ``DATABASES[DATABASE]``; it
  must be the same database, since the rows are written through Django's connection;
- ``AMQP_URL``: RabbitMQ (default: ``TOMQUEUE_AMQP_URL``, else tomqueue's default);
- ``PREFIX``: the exchange and queue prefix (default: ``TOMQUEUE_PREFIX`` or "tomqueue");
- ``MODULES``: more modules whose tasks the worker registers, beyond each installed
  app's ``tasks`` module;
- ``SETTINGS``: any other ``tomqueue.Settings`` fields by name
  (``{"wait_for_broker": True, "status_ttl": 3600}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Django-only keys of DATABASES[...]["OPTIONS"], not libpq connection parameters
_DJANGO_ONLY_OPTIONS = frozenset(
    {"pool", "server_side_binding", "isolation_level", "assume_role", "cursor_factory", "context"}
)
OPTION_KEYS = frozenset({"DATABASE", "DATABASE_URL", "AMQP_URL", "PREFIX", "MODULES", "SETTINGS"})


def database_url_for(alias: str) -> str:
    """An SQLAlchemy URL (psycopg 3) for Django's database ``alias``."""
    from django.db import connections
    from sqlalchemy import URL

    params = connections[alias].settings_dict
    query = {
        str(key): str(value)
        for key, value in (params.get("OPTIONS") or {}).items()
        if key not in _DJANGO_ONLY_OPTIONS and isinstance(value, str | int)
    }
    url = URL.create(
        "postgresql+psycopg",
        username=params.get("USER") or None,
        password=params.get("PASSWORD") or None,
        host=params.get("HOST") or None,
        port=int(params["PORT"]) if params.get("PORT") else None,
        database=params.get("NAME") or None,
        query=query,
    )
    return url.render_as_string(hide_password=False)


def tomqueue_changes(options: Mapping[str, Any]) -> dict[str, Any]:
    """The ``tomqueue.configure()`` changes that a backend's OPTIONS mean."""
    changes: dict[str, Any] = dict(options.get("SETTINGS") or {})
    changes["database_url"] = options.get("DATABASE_URL") or database_url_for(
        options.get("DATABASE", "default")
    )
    if options.get("AMQP_URL"):
        changes["amqp_url"] = options["AMQP_URL"]
    if options.get("PREFIX"):
        changes["prefix"] = options["PREFIX"]
    return changes
