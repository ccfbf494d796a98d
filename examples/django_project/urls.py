"""URLs of the demo project."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.home),
    path("login", views.login_view),
    path("app", views.private),
    path("logout", views.logout_view),
    path("logout-everywhere", views.logout_everywhere),
    path("events", views.security_events),
]
