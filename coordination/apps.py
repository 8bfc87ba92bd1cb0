from django.apps import AppConfig


class CoordinationConfig(AppConfig):
    name = "coordination"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from coordination import joins  # noqa: F401  (registers the join signal)
