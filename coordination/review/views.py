"""The review page and its actions. Viewers read it; reviewers decide, approve, retry with a hint, drop.

Decisions are taken by ``merges.review`` (it records who, when and the diff) through
``coordination.review.actions``, which writes the event other reviewers' pages follow; a form carries the
version of what it showed, and a decision on what another reviewer has changed since is refused (409) with
their decision and this one's text shown together. Approving, retrying and dropping are queued by
``coordination.review.actions`` and carried out by a worker, which releases the
continuation the way an automatic merge does: the answer shows the action pending, and the page follows it
live (``coordination.review.live``) to its outcome. The gate is the server's: approving with anything
undecided or markers left answers 409 with the reasons, whatever the page sent. With htmx a decision swaps
its file's section and the summary; without, each form posts and is redirected back to the hunk it changed.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from coordination.review import actions as review_actions
from coordination.review import page as review_page
from coordination.review.live import review_live_view
from coordination.web.htmx import HtmxHttpRequest
from coordination.web.permissions import can_operate, can_review, reviewer_required, viewer_required
from merges import review
from merges.models import ConflictFile, MergeAttempt


@viewer_required
def review_view(request: HtmxHttpRequest, attempt_id: int) -> HttpResponse:
    context = review_page.page(attempt_id)
    return render(request, "coordination/review.html", {
        **context, "can_review": can_review(request.user), "can_operate": can_operate(request.user),
        "staff": request.user.is_staff})


@viewer_required
def review_live(request: HtmxHttpRequest, attempt_id: int) -> HttpResponse:
    """The live view without a websocket: what the socket would have sent for events after ``since``."""
    attempt = get_object_or_404(MergeAttempt, pk=attempt_id)
    view = review_live_view(attempt.ticket_id, attempt.pk, request.user)
    since = request.GET.get("since", "")
    return HttpResponse(view.poll(int(since) if since.isdigit() else None))


@viewer_required
def file_fragment(request: HtmxHttpRequest, attempt_id: int, file_id: int) -> HttpResponse:
    attempt, conflict = _file(attempt_id, file_id)
    return HttpResponse(review_page.render_file(request, attempt.pk, conflict.pk, can_review(request.user)))


@reviewer_required
@require_POST
def decide_hunk(request: HtmxHttpRequest, attempt_id: int, file_id: int, index: int) -> HttpResponse:
    attempt, conflict = _file(attempt_id, file_id)
    choice, text = _choice(request)
    return _decided(request, attempt, conflict, index, text, lambda: review_actions.decide_hunk(
        conflict.pk, index, choice, request.user, text=text, seen=_seen(request)))


@reviewer_required
@require_POST
def undo_hunk(request: HtmxHttpRequest, attempt_id: int, file_id: int, index: int) -> HttpResponse:
    attempt, conflict = _file(attempt_id, file_id)
    return _decided(request, attempt, conflict, index, None, lambda: review_actions.undo_hunk(
        conflict.pk, index, request.user, seen=_seen(request)))


@reviewer_required
@require_POST
def decide_file(request: HtmxHttpRequest, attempt_id: int, file_id: int) -> HttpResponse:
    attempt, conflict = _file(attempt_id, file_id)
    choice, text = _choice(request)
    return _decided(request, attempt, conflict, None, text, lambda: review_actions.decide_file(
        conflict.pk, choice, request.user, text=text, seen=_seen(request)))


def _seen(request: HtmxHttpRequest) -> str | None:
    """The version of the hunk or file the page showed (forms carry it); None from a client without one."""
    return request.POST.get("seen") or None


def _choice(request: HtmxHttpRequest) -> tuple[str, str | None]:
    """The button pressed, and for an edit its text (browsers send CRLF; Django's upload limit bounds it)."""
    choice = request.POST.get("choice", "")
    text = request.POST.get("text") if choice == "edit" else None
    return choice, None if text is None else text.replace("\r\n", "\n")


@reviewer_required
@require_POST
def approve(request: HtmxHttpRequest, attempt_id: int) -> HttpResponse:
    attempt = get_object_or_404(MergeAttempt, pk=attempt_id)
    return _queue(request, attempt, lambda: review_actions.request_approve(attempt.pk, request.user))


@reviewer_required
@require_POST
def retry_with_hint(request: HtmxHttpRequest, attempt_id: int) -> HttpResponse:
    attempt = get_object_or_404(MergeAttempt, pk=attempt_id)
    hint = request.POST.get("hint", "").strip()
    if not hint:
        return _refused(request, attempt, ["a retry needs a hint: say what the agent got wrong"], status=422)
    return _queue(request, attempt, lambda: review_actions.request_retry(attempt.pk, hint, request.user))


@reviewer_required
@require_POST
def drop_source(request: HtmxHttpRequest, attempt_id: int) -> HttpResponse:
    attempt = get_object_or_404(MergeAttempt, pk=attempt_id)
    source = request.POST.get("source", "")
    return _queue(request, attempt, lambda: review_actions.request_drop(attempt.pk, source, request.user))


def _file(attempt_id: int, file_id: int) -> tuple[MergeAttempt, ConflictFile]:
    conflict = get_object_or_404(ConflictFile.objects.select_related("attempt"), pk=file_id, attempt_id=attempt_id)
    return conflict.attempt, conflict


def _decided(request: HtmxHttpRequest, attempt: MergeAttempt, conflict: ConflictFile, hunk: int | None,
             text: str | None, decide) -> HttpResponse:
    """The file's section after the decision; refused (409), the section with the reason. Refused because
    another reviewer decided the same place meanwhile, the section shows theirs and keeps this one's text."""
    status, stale = 200, None
    try:
        decide()
    except review.ReviewError as exc:
        if not request.htmx:
            messages.error(request, str(exc))
        status = 409
        if isinstance(exc, review.Stale):
            stale = review_page.Stale(str(exc), hunk, text)
    if not request.htmx:
        anchor = f"hunk-{conflict.pk}-{hunk}" if hunk is not None else f"file-{conflict.pk}"
        return HttpResponseRedirect(reverse("coordination:review", args=[attempt.pk]) + f"#{anchor}")
    return HttpResponse(review_page.render_file(request, attempt.pk, conflict.pk, can_review=True, stale=stale),
                        status=status)


def _queue(request: HtmxHttpRequest, attempt: MergeAttempt, request_action) -> HttpResponse:
    """Approve, retry and drop are queued: the answer shows the action pending (the page then follows it
    live to its outcome), or the reasons it was refused."""
    try:
        request_action()
    except review.GateClosed as exc:
        return _refused(request, attempt, exc.problems)
    except review.ReviewError as exc:
        return _refused(request, attempt, [str(exc)])
    if not request.htmx:
        messages.info(request, f"Merge #{attempt.pk}: queued; this page shows the outcome when it is done.")
        return HttpResponseRedirect(reverse("coordination:review", args=[attempt.pk]))
    return HttpResponse(review_page.render_review(request, attempt.pk, can_review=True, oob=False))


def _refused(request: HtmxHttpRequest, attempt: MergeAttempt, problems: list[str], status: int = 409) -> HttpResponse:
    """The gate (or a stale page) said no: the summary with the reasons, or the page with a message."""
    if not request.htmx:
        for problem in problems:
            messages.error(request, problem)
        return HttpResponseRedirect(reverse("coordination:review", args=[attempt.pk]))
    return HttpResponse(review_page.render_review(request, attempt.pk, can_review=True, oob=False, refused=problems),
                        status=status)
