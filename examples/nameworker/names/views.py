"""The demo's views: parse, call tomqueue, render."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render

import tomqueue
from names.models import Greeting
from names.tasks import NameJob

MAX_NAME = 100


def index(request: HttpRequest) -> HttpResponse:
    """``/?name=foo`` enqueues NameJob("foo") and goes to its page; ``/`` shows the form
    and the latest greetings."""
    name = request.GET.get("name", "").strip()
    if name:
        job_id = tomqueue.enqueue(NameJob(name[:MAX_NAME]))
        return redirect("job", job_id=job_id)
    greetings = Greeting.objects.order_by("-created_at")[:10]
    return render(request, "names/index.html", {"greetings": greetings})


def job_page(request: HttpRequest, job_id: int) -> HttpResponse:
    """The job's page: its status and progress, kept fresh by names/static/names/job.js."""
    status = tomqueue.status(job_id)
    if status is None:
        raise Http404(f"no job {job_id} (unknown, or its status expired)")
    return render(request, "names/job.html", {"job_id": job_id, "status": status.to_dict()})


def job_json(request: HttpRequest, job_id: int) -> JsonResponse:
    """``tomqueue.status(job_id).to_dict()``, which the page polls."""
    status = tomqueue.status(job_id)
    if status is None:
        return JsonResponse({"id": job_id, "state": "unknown"}, status=404)
    return JsonResponse(status.to_dict())
