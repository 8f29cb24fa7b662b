"""Handler serialization: a job's class name and JSON state, and back, never pickle."""

from __future__ import annotations

import json
import math
from typing import Any

from tomqueue.errors import HandlerDecodeError, UnknownJobClassError
from tomqueue.job import Job, JobRegistry, registry

HANDLER_VERSION = 1


def _check_json_value(value: Any, path: str) -> None:
    """Refuse anything that would not come back from JSON as the same value."""
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{path} is {value!r}, which JSON cannot hold")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json_value(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path} has the key {key!r}; JSON object keys must be strings")
            _check_json_value(item, f"{path}[{key!r}]")
        return
    raise TypeError(
        f"{path} holds a {type(value).__name__}, which is not JSON-serialisable "
        "(use str, int, float, bool, None, list or dict)"
    )


def shadowed_member(cls: type, key: str) -> str | None:
    """Why ``key`` may not be a state key of ``cls``, or None if it may.

    State is data: a key must never replace a method, property or other descriptor of the
    class (a row whose state says ``{"reschedule_at": 1}`` must not break the retry path,
    and ``{"perform": ...}`` must not replace the job's code), nor be a dunder name.
    """
    if key.startswith("__") and key.endswith("__"):
        return f"{key!r} is a special (dunder) name"
    for klass in cls.__mro__:
        if key in klass.__dict__:
            member = klass.__dict__[key]
            if callable(member) or hasattr(type(member), "__get__"):
                return f"{key!r} would replace {klass.__qualname__}.{key}, which is not data"
            return None
    return None


def job_state(job: Job) -> dict[str, Any]:
    """The job's instance attributes, checked one by one; TypeError names the culprit."""
    if not isinstance(job, Job):
        raise TypeError(f"expected a tomqueue.Job instance, got {type(job).__name__}")
    state = dict(vars(job))
    cls = type(job)
    cls_name = cls.__qualname__
    for attr, value in state.items():
        why = shadowed_member(cls, attr)
        if why is not None:
            raise TypeError(f"{cls_name}.{attr} cannot be job state: {why}")
        _check_json_value(value, f"{cls_name}.{attr}")
    return state


def encode_handler(job: Job) -> str:
    """The text stored in the ``handler`` column."""
    document = {"v": HANDLER_VERSION, "class": type(job).class_name(), "state": job_state(job)}
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def handler_class_name(handler: str) -> str:
    """The class named by a handler, for listings and error messages; never raises."""
    try:
        document = json.loads(handler)
    except Exception:  # a row is data: deep nesting (RecursionError) included
        return "<undecodable>"
    if isinstance(document, dict) and isinstance(document.get("class"), str):
        return str(document["class"])
    return "<undecodable>"


def decode_handler(handler: str, jobs: JobRegistry = registry) -> Job:
    """Rebuild the job without calling ``__init__``; only registered classes are allowed."""
    try:
        document = json.loads(handler)
    except RecursionError as exc:
        raise HandlerDecodeError("handler JSON is nested too deeply to read") from exc
    except Exception as exc:  # a row is data written by anyone with SQL access
        raise HandlerDecodeError(f"handler is not JSON: {type(exc).__name__}: {exc}") from exc
    if not isinstance(document, dict):
        raise HandlerDecodeError("handler is not a JSON object")
    name = document.get("class")
    state = document.get("state")
    if not isinstance(name, str) or not isinstance(state, dict):
        raise HandlerDecodeError("handler needs a string 'class' and an object 'state'")
    cls = jobs.lookup(name)
    if cls is None:
        loaded = ", ".join(jobs.modules()) or "none"
        raise UnknownJobClassError(
            f"job class {name!r} is not registered in this worker: it must subclass "
            "tomqueue.Job and its module must be imported (tomqueue-worker --app MODULE). "
            f"Modules with job classes loaded here: {loaded}. Once the class is deployed, "
            "`tomqueue retry` runs the job again."
        )
    for key in state:
        why = shadowed_member(cls, key)
        if why is not None:
            raise HandlerDecodeError(f"handler state of {name} is refused: {why}")
    job = cls.__new__(cls)
    job.__dict__.update(state)
    return job
