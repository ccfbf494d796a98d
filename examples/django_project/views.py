"""Views of the demo project: Django's own auth API, over sessionkit sessions."""

from __future__ import annotations

import html

from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.middleware.csrf import get_token

from examples.common import (
    COOKIES_NEEDED,
    COOKIES_NEEDED_TITLE,
    EVENTS,
    FORM_EXPIRED,
    REMEMBER_FOR,
    WRONG_CREDENTIALS,
    events_body,
    home_body,
    login_body,
    opt_out_signal,
    page,
    private_body,
    session_facts,
)
from sessionkit.integrations.django import get_kit, revoke_user, session_of, visitor_of


def show(title: str, body: str, current: str = "", status: int = 200) -> HttpResponse:
    return HttpResponse(page(title, body, current=current), status=status)


def csrf_field(request: HttpRequest) -> str:
    """Django's anti-forgery field; with CSRF_USE_SESSIONS its token is in the session."""
    token = html.escape(get_token(request))
    return f'<input type=hidden name=csrfmiddlewaretoken value="{token}">'


def signal_of(request: HttpRequest) -> str | None:
    """The privacy signal the request sends (``Sec-GPC: 1``, ``DNT: 1``), or None."""
    return opt_out_signal(request.headers.get("Sec-GPC"), request.headers.get("DNT"))


def facts(request: HttpRequest) -> str:
    return session_facts(
        session_of(request),
        get_kit().timeouts,
        visitor=visitor_of(request),
        signal=signal_of(request),
    )


def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    name = user.get_username() if user.is_authenticated else None
    return show(
        "sessionkit demo",
        home_body(name, visitor_of(request), signal_of(request), get_kit().timeouts),
        "/",
    )


def login_view(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        user = authenticate(
            request,
            username=request.POST.get("username", ""),
            password=request.POST.get("password", ""),
        )
        if user is None:
            return show("Log in failed", WRONG_CREDENTIALS)
        login(request, user)  # cycle_key(): a new session id, bound to the user
        if request.POST.get("remember") == "1":
            request.session.set_expiry(REMEMBER_FOR)  # may idle for a week, enforced server-side
        return HttpResponseRedirect("/app", status=303)
    return show("Log in", login_body(csrf_field(request), facts(request)), "/login")


def private(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return HttpResponseRedirect("/login", status=303)
    visits = request.session.get("visits", 0) + 1
    request.session["visits"] = visits
    body = private_body(
        request.user.get_username(), visits, csrf_field(request), facts(request), EVENTS.latest(3)
    )
    return show("Private area", body, "/app")


def security_events(request: HttpRequest) -> HttpResponse:
    return show("Security events", events_body(EVENTS.latest()), "/events")


def logout_view(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    logout(request)  # flush(): the session is invalidated and its id revoked
    return HttpResponseRedirect("/", status=303)


def logout_everywhere(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if request.user.is_authenticated:
        revoke_user(request.user)
    logout(request)
    return HttpResponseRedirect("/", status=303)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """``CSRF_FAILURE_VIEW``: a form posted with cookies off is told that cookies are needed."""
    if "HTTP_COOKIE" not in request.META:  # cookies are off: no form token could come back
        return show(COOKIES_NEEDED_TITLE, COOKIES_NEEDED, status=403)
    return show("Form refused", FORM_EXPIRED, status=403)
