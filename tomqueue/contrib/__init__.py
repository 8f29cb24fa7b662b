"""Integrations with other frameworks (``tomqueue.contrib.django``)."""
