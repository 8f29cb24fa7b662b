"""NameWorker: the demo Django project of tomqueue (examples/nameworker, bin/dev)."""
