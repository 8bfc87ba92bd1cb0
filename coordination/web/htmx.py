"""The request the dashboard's views receive: Django's, with what django-htmx's middleware adds.

django-htmx documents this subclass as the way to type ``request.htmx``; it exists for the type checker
only (the middleware sets the attribute on Django's own request objects).
"""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails
