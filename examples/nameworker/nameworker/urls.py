"""The demo's three addresses: the form, a job's page, and a job's status as JSON."""

from django.urls import path
from names import views

urlpatterns = [
    path("", views.index, name="index"),
    path("jobs/<int:job_id>/", views.job_page, name="job"),
    path("jobs/<int:job_id>.json", views.job_json, name="job-json"),
]
