from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoordinationConfig(AppConfig):
    name = "coordination"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from coordination.domain import joins  # noqa: F401  (registers the join signal)
        from coordination.web.permissions import ensure_groups

        # The viewers and reviewers groups, after every migrate and every test flush: no data migration.
        post_migrate.connect(ensure_groups, sender=self, dispatch_uid="dagmerge-ensure-groups")
