from django.apps import AppConfig
from django.db.models.signals import post_migrate, post_save


class CoordinationConfig(AppConfig):
    name = "coordination"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from celery.signals import worker_process_init

        from coordination.domain import dispatch
        from coordination.jobs.dispatchers import default_dispatcher, keep_database_connections
        from coordination.models import Event
        from coordination.running.io_guard import refuse_io_in_transaction
        from coordination.scheduling import joins  # noqa: F401  (registers the join signal)
        from coordination.web.live import announce_saved_event
        from coordination.web.permissions import ensure_groups
        from merges.engine import processes

        dispatch.install_default(default_dispatcher)
        processes.io_guard = refuse_io_in_transaction
        worker_process_init.connect(keep_database_connections, dispatch_uid="dagmerge-keep-connections")
        post_save.connect(announce_saved_event, sender=Event, dispatch_uid="dagmerge-announce-event")

        # The viewers and reviewers groups, after every migrate and every test flush: no data migration.
        post_migrate.connect(ensure_groups, sender=self, dispatch_uid="dagmerge-ensure-groups")
