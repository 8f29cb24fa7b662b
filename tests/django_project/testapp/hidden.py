"""A task outside every autodiscovered module: the worker must never import this module,
so a row naming its task fails instead. Importing it leaves a mark (a file named by
TESTAPP_IMPORT_MARK) where a test asks for one."""

from __future__ import annotations

import os
from pathlib import Path

from tomqueue.contrib.django.compat import tasks

if os.environ.get("TESTAPP_IMPORT_MARK"):
    Path(os.environ["TESTAPP_IMPORT_MARK"]).write_text(f"imported by {os.getpid()}")


@tasks.task
def hidden(label: str) -> str:
    return label
