"""Greeting: the success message a NameJob records, once."""

from __future__ import annotations

from django.db import models


class Greeting(models.Model):
    """One per NameJob: ``token`` is the job's own (part of its state), so a job run again
    after its worker was killed finds the greeting it wrote instead of writing another."""

    token = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    message = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.message
