"""Views of the demo project: Django's own auth API, over sessionkit sessions."""

from __future__ import annotations

import html

from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.middleware.csrf import get_token

from sessionkit.integrations.django import revoke_user, session_of, visitor_of

from .bootstrap import DEMO_PASSWORD, DEMO_USER


def page(title: str, body: str) -> HttpResponse:
    return HttpResponse(
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{title}</title>"
        f"<body><h1>{title}</h1>{body}</body></html>"
    )


def csrf_field(request: HttpRequest) -> str:
    """Django's anti-forgery field; with CSRF_USE_SESSIONS its token is in the session."""
    token = html.escape(get_token(request))
    return f'<input type=hidden name=csrfmiddlewaretoken value="{token}">'


def session_line(request: HttpRequest) -> str:
    return (
        f"<p>Session id: <code id=session-id>{html.escape(session_of(request).id)}</code> "
        "(it changes when you log in or out, and every 15 minutes).</p>"
    )


def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    who = (
        f"Logged in as <b>{html.escape(user.get_username())}</b>."
        if user.is_authenticated
        else "Not logged in."
    )
    return page(
        "sessionkit demo",
        f"<p>{who}</p><p>Visitor id: <code>{html.escape(str(visitor_of(request)))}</code></p>"
        '<p><a href="/app">Private area</a> · <a href="/login">Log in</a></p>',
    )


def login_view(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        user = authenticate(
            request,
            username=request.POST.get("username", ""),
            password=request.POST.get("password", ""),
        )
        if user is None:
            return page(
                "Log in failed", '<p>Wrong user or password. <a href="/login">Again</a></p>'
            )
        login(request, user)  # cycle_key(): a new session id, bound to the user
        return HttpResponseRedirect("/app", status=303)
    return page(
        "Log in",
        f'<form method=post action="/login">{csrf_field(request)}'
        '<label>User <input name=username autocomplete=username value=""></label> '
        "<label>Password <input name=password type=password autocomplete=current-password>"
        "</label> <button>Log in</button></form>"
        f"<p>The demo user is <code>{DEMO_USER}</code> / <code>{DEMO_PASSWORD}</code>.</p>"
        f"{session_line(request)}",
    )


def private(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return HttpResponseRedirect("/login", status=303)
    visits = request.session.get("visits", 0) + 1
    request.session["visits"] = visits
    name = html.escape(request.user.get_username())
    return page(
        "Private area",
        f"<p>Hello {name}: visit {visits} in this session.</p>{session_line(request)}"
        f'<form method=post action="/logout">{csrf_field(request)}'
        "<button>Log out</button></form>"
        f'<form method=post action="/logout-everywhere">{csrf_field(request)}'
        "<button>Log out everywhere</button></form>",
    )


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
