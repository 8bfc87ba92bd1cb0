from django.apps import AppConfig


class MergesConfig(AppConfig):
    name = "merges"
    default_auto_field = "django.db.models.BigAutoField"
