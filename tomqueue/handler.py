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


def job_state(job: Job) -> dict[str, Any]:
    """The job's instance attributes, checked one by one; TypeError names the culprit."""
    if not isinstance(job, Job):
        raise TypeError(f"expected a tomqueue.Job instance, got {type(job).__name__}")
    state = dict(vars(job))
    cls_name = type(job).__qualname__
    for attr, value in state.items():
        _check_json_value(value, f"{cls_name}.{attr}")
    return state


def encode_handler(job: Job) -> str:
    """The text stored in the ``handler`` column."""
    document = {"v": HANDLER_VERSION, "class": type(job).class_name(), "state": job_state(job)}
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def handler_class_name(handler: str) -> str:
    """The class named by a handler, for listings and error messages."""
    try:
        document = json.loads(handler)
    except ValueError:
        return "<undecodable>"
    if isinstance(document, dict) and isinstance(document.get("class"), str):
        return str(document["class"])
    return "<undecodable>"


def decode_handler(handler: str, jobs: JobRegistry = registry) -> Job:
    """Rebuild the job without calling ``__init__``; only registered classes are allowed."""
    try:
        document = json.loads(handler)
    except ValueError as exc:
        raise HandlerDecodeError(f"handler is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise HandlerDecodeError("handler is not a JSON object")
    name = document.get("class")
    state = document.get("state")
    if not isinstance(name, str) or not isinstance(state, dict):
        raise HandlerDecodeError("handler needs a string 'class' and an object 'state'")
    cls = jobs.lookup(name)
    if cls is None:
        raise UnknownJobClassError(
            f"job class {name!r} is not registered in this worker: it must subclass "
            "tomqueue.Job and its module must be imported (tomqueue-worker --app MODULE)"
        )
    job = cls.__new__(cls)
    job.__dict__.update(state)
    return job
