from __future__ import annotations

from django.urls import path

from coordination.review import views as review_views
from coordination.web import metrics, views

app_name = "coordination"

urlpatterns = [
    path("", views.ticket_list, name="ticket_list"),
    path("live/", views.live_dashboard, name="live_dashboard"),
    path("tickets/<int:ticket_id>/", views.ticket_detail, name="ticket_detail"),
    path("tickets/<int:ticket_id>/live/", views.live_poll, name="live_poll"),
    path("tickets/<int:ticket_id>/cancel/", views.cancel_ticket, name="cancel_ticket"),
    path("tickets/<int:ticket_id>/rerun-failed/", views.rerun_failed, name="rerun_failed"),
    path("tickets/<int:ticket_id>/tasks/<str:key>/", views.task_detail, name="task_detail"),
    path("tickets/<int:ticket_id>/tasks/<str:key>/retry/", views.retry_task, name="retry_task"),
    path("merges/<int:attempt_id>/", views.merge_attempt, name="merge_attempt"),
    path("merges/<int:attempt_id>/rollback/", views.rollback_merge, name="rollback_merge"),
    path("tickets/<int:ticket_id>/resume/", views.resume_ticket, name="resume_ticket"),
    path("reviews/", views.reviews, name="reviews"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("reviews/<int:attempt_id>/", review_views.review_view, name="review"),
    path("reviews/<int:attempt_id>/live/", review_views.review_live, name="review_live"),
    path("reviews/<int:attempt_id>/files/<int:file_id>/", review_views.file_fragment, name="review_file"),
    path("reviews/<int:attempt_id>/files/<int:file_id>/hunks/<int:index>/", review_views.decide_hunk,
         name="decide_hunk"),
    path("reviews/<int:attempt_id>/files/<int:file_id>/hunks/<int:index>/undo/", review_views.undo_hunk,
         name="undo_hunk"),
    path("reviews/<int:attempt_id>/files/<int:file_id>/decide/", review_views.decide_file, name="decide_file"),
    path("reviews/<int:attempt_id>/approve/", review_views.approve, name="approve"),
    path("reviews/<int:attempt_id>/retry/", review_views.retry_with_hint, name="retry_with_hint"),
    path("reviews/<int:attempt_id>/drop/", review_views.drop_source, name="drop_source"),
]
