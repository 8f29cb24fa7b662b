from django.apps import AppConfig


class NamesConfig(AppConfig):
    name = "names"
    default_auto_field = "django.db.models.BigAutoField"
