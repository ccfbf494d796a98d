"""What the example apps share: the demo user, the kit, anti-forgery tokens, events and markup.

Each app keeps its framework's idiom in its own file; this module holds only what is the
same in all of them: the policy, the log of security events the pages show, and the
markup of every page (one small stylesheet, no framework, no script).
"""

from __future__ import annotations

import hmac
import html
import logging
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sessionkit
from sessionkit import ForgeryPolicy, events
from sessionkit.devices import FOREIGN_HANDLE
from sessionkit.lifetime import Timeouts
from sessionkit.stores import SQLiteStore

DEMO_USER = "demo"
DEMO_PASSWORD = "correct horse"  # noqa: S105 - the published demo credential
#: Seconds of inactivity a "remember me" session may idle for.
REMEMBER_FOR = 7 * 24 * 3600
#: How many earlier session ids the private page lists.
ID_TRAIL = 4


def state_dir() -> Path:
    """Where the examples keep their SQLite files (``SESSIONKIT_DEMO_DIR`` or a temp dir)."""
    path = Path(
        os.environ.get("SESSIONKIT_DEMO_DIR") or Path(tempfile.gettempdir()) / "sessionkit-demo"
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


# ----------------------------------------------------------------------- security events


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One security event as the demo shows it: when, why, which cookie, from where."""

    at: float
    reason: str
    cookie: str
    client: str | None


class EventLog:
    """The latest security events of this server process, newest first (a ring buffer).

    It keeps what a :class:`sessionkit.events.SecurityEvent` carries (the reason, the
    cookie's name, the client address as the kit may record it) and the time: never a
    cookie's value or any session data.
    """

    def __init__(self, size: int = 50) -> None:
        self._events: deque[LoggedEvent] = deque(maxlen=size)
        self._lock = threading.Lock()

    def record(self, event: events.SecurityEvent) -> None:
        """The kit's ``on_security_event`` hook: keep ``event``, dropping the oldest."""
        logged = LoggedEvent(time.time(), event.reason, event.cookie, event.client)
        with self._lock:
            self._events.appendleft(logged)

    def latest(self, count: int | None = None) -> list[LoggedEvent]:
        """The newest ``count`` events (all of them by default), newest first."""
        with self._lock:
            kept = list(self._events)
        return kept if count is None else kept[:count]


#: The security events every page of this process shows.
EVENTS = EventLog()

#: What each reason means, in the words of the events page.
REASONS = {
    events.MALFORMED: "The cookie was not one this site issues (wrong shape or length).",
    events.TAMPERED: "The cookie was altered: its authentication tag does not verify.",
    events.UNKNOWN_KEY: "The cookie was sealed under a key the site no longer holds.",
    events.OVERSIZED: "The cookie was longer than any the site issues.",
    events.DUPLICATE: "The browser sent the same cookie name twice.",
    events.EXPIRED_IDLE: "The session had been idle for longer than the idle timeout.",
    events.EXPIRED_ABSOLUTE: "The session was older than the absolute timeout.",
    events.FROM_THE_FUTURE: "A time inside the cookie lies in the future.",
    events.INVALID_PAYLOAD: "The cookie is authentic, but what it holds has the wrong shape.",
    events.REVOKED: "The session had ended on the server (logged out, or ended elsewhere).",
    events.REPLAYED: "A retired session id came back: a copied cookie. The session is ended.",
    events.INSECURE_TRANSPORT: "The site was reached over plain http, where no cookie is kept.",
    FOREIGN_HANDLE: "A sign-out named a session that is not this user's.",
}


def show_security_events() -> None:
    """Print sessionkit's security events (rejected, replayed, revoked cookies)."""
    security_log = logging.getLogger("sessionkit.security")
    security_log.setLevel(logging.INFO)
    security_log.addHandler(logging.StreamHandler())


def demo_settings(name: str) -> dict[str, Any]:
    """The examples' policy, as keyword arguments of :class:`sessionkit.SessionKit`.

    ``/app`` needs cookies (with the demo's own "cookies are required" page), sessions are
    kept in an SQLite file, security events go to :data:`EVENTS`, plain http locally,
    forged requests are refused by sessionkit (by Django's own middleware in Django).
    """
    return {
        "secret_keys": os.environ.get("SESSIONKIT_SECRET_KEYS", sessionkit.generate_key()).split(
            ","
        ),
        "require_cookies": ["/app"],
        "store": SQLiteStore(state_dir() / f"{name}-sessions.sqlite3"),
        "insecure_development": True,
        "on_security_event": EVENTS.record,
        "cookies_required_page": GATE_PAGE,
        # Django keeps its own CsrfViewMiddleware (and its token field); the others get
        # sessionkit's checks, with its token on the forms after log-in.
        **(
            {}
            if name == "django"
            else {"forgery": ForgeryPolicy(token_paths=TOKEN_PATHS, refused_page=refused_page)}
        ),
    }


def demo_kit(name: str) -> sessionkit.SessionKit:
    """The examples' kit (see :func:`demo_settings`), with its events on the console."""
    show_security_events()
    return sessionkit.SessionKit(**demo_settings(name))


def credentials_match(user: str, password: str) -> bool:
    """Whether the typed user and password are the demo's (compared in constant time)."""
    user_ok = hmac.compare_digest(user.encode(), DEMO_USER.encode())
    password_ok = hmac.compare_digest(password.encode(), DEMO_PASSWORD.encode())
    return user_ok & password_ok


# ------------------------------------------------------------- anti-forgery tokens (forms)

#: Where sessionkit asks unsafe requests for its session-bound token as well as checking
#: their origin. The log-in form carries a token too (making one sets the session cookie),
#: but is checked by origin only, so a browser with cookies off is told about cookies
#: rather than about an expired form.
TOKEN_PATHS = ("/logout", "/logout-everywhere", "/app")


def csrf_field(token: str) -> str:
    """The hidden form field carrying a token sessionkit made (``csrf_token(...)``)."""
    return f'<input type=hidden name=csrf_token value="{html.escape(token)}">'


def refused_page(reason: str) -> str:
    """The demo's page for a request sessionkit refused as forged (an expired form too)."""
    if reason in ("token_missing", "token_invalid"):
        text = (
            "This form belongs to an earlier session (you logged in or out since it was "
            "shown). Nothing was done; go back, reload the page and try again."
        )
    else:
        text = "This request came from another site, so nothing was done."
    return page("Form refused", message(text))


# --------------------------------------------------------------------------------- markup

#: The one stylesheet of every page: readable type, good contrast, a visible focus ring.
STYLESHEET = """
:root{--ink:#17202b;--muted:#46505e;--paper:#f4f6f9;--card:#fff;--line:#d3d9e1;
--accent:#0a54c2;--danger:#a3182a;--bar:#102a43;--focus:#ffbf47}
*{box-sizing:border-box}
body{margin:0;font:1rem/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--ink);background:var(--paper)}
a{color:var(--accent);text-underline-offset:.15em}
.skip{position:absolute;left:-100vw}
.skip:focus{left:1rem;top:.5rem;background:#fff;padding:.25rem .5rem;z-index:1}
header{background:var(--bar);color:#fff}
.bar,main{max-width:56rem;margin:0 auto;padding:0 1.25rem}
.bar{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 2rem;padding-block:.8rem}
.bar a{color:#fff}
.brand{font-weight:700;font-size:1.15rem;text-decoration:none}
nav ul{display:flex;flex-wrap:wrap;gap:.25rem 1.25rem;list-style:none;margin:0;padding:0}
nav a[aria-current=page]{text-decoration-thickness:.2em}
main{padding-block:1.5rem 3rem}
h1{font-size:1.8rem;line-height:1.2;margin:0 0 1rem}
h2{font-size:1.15rem;margin:0 0 .75rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:.5rem;
padding:1rem 1.25rem;margin:0 0 1.25rem}
.notice{border-left:.35rem solid var(--danger)}
.lead{font-size:1.1rem}
.hint{color:var(--muted);font-size:.92rem}
dl.facts{display:grid;grid-template-columns:minmax(9rem,max-content) 1fr;gap:.45rem 1.5rem;
margin:0}
dt{font-weight:600}
dd{margin:0}
code{font:.92em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#e9eef4;
padding:.05rem .3rem;border-radius:.25rem}
form{margin:0}
label{display:block;font-weight:600;margin:.9rem 0 .3rem}
label.check{display:flex;align-items:center;gap:.5rem;font-weight:400}
input{font:inherit}
input[type=text],input[type=password]{width:100%;max-width:22rem;padding:.5rem .65rem;
border:1px solid #68717d;border-radius:.35rem;background:#fff;color:var(--ink)}
input[type=checkbox]{width:1.15rem;height:1.15rem;margin:0}
button{font:inherit;font-weight:600;padding:.5rem 1.1rem;border-radius:.35rem;cursor:pointer;
border:2px solid var(--accent);background:var(--accent);color:#fff}
button.quiet{background:#fff;color:var(--accent)}
button.danger{border-color:var(--danger);background:var(--danger)}
.actions{display:flex;flex-wrap:wrap;gap:.75rem;align-items:center;margin-top:1.1rem}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px;box-shadow:0 0 0 6px var(--bar)}
table{width:100%;border-collapse:collapse}
caption{text-align:left;color:var(--muted);padding-bottom:.5rem}
th,td{text-align:left;vertical-align:top;padding:.5rem .6rem;border-bottom:1px solid var(--line)}
td.when{white-space:nowrap}
.badge{display:inline-block;padding:0 .55rem;border-radius:1rem;font-size:.85rem;
font-weight:600;background:#e4eefc;color:#093b87}
.badge.warn{background:#fbe5e8;color:#861424}
.badge.ok{background:#e1f2e6;color:#0d4d20}
ul.plain{list-style:none;margin:0;padding:0}
ul.plain li{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;
gap:.5rem 1rem;padding:.6rem 0;border-bottom:1px solid var(--line)}
@media (max-width:36rem){dl.facts{grid-template-columns:1fr;gap:.1rem}dd{margin-bottom:.6rem}}
footer{max-width:56rem;margin:0 auto;padding:0 1.25rem 2rem;color:var(--muted);font-size:.9rem}
"""

#: The name of the demo, its home page's title.
BRAND = "sessionkit demo"
#: The links of the top bar: (path, label).
NAV = (
    ("/", "Home"),
    ("/app", "Private area"),
    ("/events", "Security events"),
    ("/login", "Log in"),
)


def page(title: str, body: str, *, current: str = "") -> str:
    """A whole HTML page: the top bar (``current`` marks its link), ``title`` and ``body``."""
    links = "".join(
        f'<li><a href="{path}"{" aria-current=page" if path == current else ""}>{label}</a></li>'
        for path, label in NAV
    )
    name = html.escape(title)
    full = name if title == BRAND else f"{name} · {BRAND}"
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{full}</title><style>{STYLESHEET}</style></head><body>"
        '<a class=skip href="#main">Skip to the content</a>'
        '<header><div class=bar><a class=brand href="/">sessionkit demo</a>'
        f'<nav aria-label="Main"><ul>{links}</ul></nav></div></header>'
        f"<main id=main><h1>{name}</h1>{body}</main>"
        "<footer>This demo keeps an encrypted session cookie and, unless your browser "
        "sends Global Privacy Control, an opaque visitor id.</footer></body></html>"
    )


#: The "cookies are required" page of the demo's kit (``$home``: the home page's link).
GATE_PAGE = page(
    "Cookies are required",
    '<section class="card notice"><p class=lead>This part of the site keeps you signed in '
    "with a cookie, and your browser did not send one back. It cannot work without "
    "cookies.</p></section>"
    "<section class=card aria-labelledby=how><h2 id=how>How to enable cookies</h2><ol>"
    "<li>In your browser's settings, open the privacy or cookies section and allow cookies "
    "for this site (first-party cookies are enough).</li>"
    "<li>If you use private browsing or an extension that blocks cookies, allow this site."
    "</li><li>Then reload this page.</li></ol></section>"
    '<p>The public pages work without cookies: <a href="$home">go to the home page</a>.</p>',
)


def short(value: str) -> str:
    """An opaque id shortened for display: its first eight characters."""
    return value[:8] + "…"


def duration(seconds: float) -> str:
    """``seconds`` in words, rounded down: "45 s", "29 min", "11 h 59 min", "6 days 23 h"."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min"
    if whole < 2 * 86400:
        hours, minutes = divmod(whole // 60, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(whole // 3600, 24)
    return f"{days} days {hours} h" if hours else f"{days} days"


def clock(moment: float, shape: str = "%Y-%m-%d %H:%M UTC") -> str:
    """A moment in UTC (by default its date and time to the minute)."""
    return datetime.fromtimestamp(moment, timezone.utc).strftime(shape)


def opt_out_signal(sec_gpc: str | None, dnt: str | None) -> str | None:
    """The privacy signal a request sends (``Sec-GPC: 1`` or ``DNT: 1``), or None."""
    if sec_gpc is not None and sec_gpc.strip() == "1":
        return "Sec-GPC: 1"
    if dnt is not None and dnt.strip() == "1":
        return "DNT: 1"
    return None


def note_id(session: sessionkit.Session) -> list[str]:
    """Record the session's current id (shortened) and return its earlier ones, newest first.

    Kept in the session, so it lasts while the session does: across timed rotations and
    the login, and gone at log-out (which starts a new, empty session).
    """
    trail = [str(item) for item in session.get("ids", [])]
    now = short(session.id)
    if not trail or trail[0] != now:
        trail = [now, *trail][: ID_TRAIL + 1]
        session["ids"] = trail
    return trail[1:]


def _visitor_fact(visitor: str | None, signal: str | None) -> str:
    if visitor is not None:
        shown = f"<code id=visitor-id>{html.escape(short(visitor))}</code>"
        return f"{shown} <span class=hint>a random id and a MAC, nothing else</span>"
    if signal is not None:
        return "none: your browser asked not to be tracked, so no visitor cookie is kept"
    return "none: you opted out on this site"


def privacy_facts(visitor: str | None, signal: str | None) -> str:
    """The visitor id and the privacy signal, as rows of a fact list."""
    privacy = (
        "<span class=badge>not sent</span> <span class=hint>with <code>Sec-GPC: 1</code> "
        "no visitor id is kept</span>"
        if signal is None
        else f"<span class='badge ok'>{html.escape(signal)}</span> "
        "<span class=hint>honoured: no visitor id</span>"
    )
    return (
        f"<dt>Visitor id</dt><dd>{_visitor_fact(visitor, signal)}</dd>"
        f"<dt>Global Privacy Control</dt><dd>{privacy}</dd>"
    )


def id_fact(session: sessionkit.Session, earlier: Iterable[str], timeouts: Timeouts) -> str:
    """The session id (shortened), its earlier ids and when it changes next."""
    trail = ", ".join(f"<code>{html.escape(item)}</code>" for item in earlier)
    past = f"<br><span class=hint>Earlier: {trail}</span>" if trail else ""
    rotate = timeouts.rotate_every
    next_change = (
        ""
        if rotate is None
        else f", and after {duration(rotate)} (next: "
        f"{duration(session.state.rotated_at + rotate - time.time())})"
    )
    return (
        f"<dt>Session id</dt><dd><code id=session-id>{html.escape(short(session.id))}</code>"
        f"<br><span class=hint>It changes when you log in or out{next_change}.</span>"
        f"{past}</dd>"
    )


def session_facts(
    session: sessionkit.Session,
    timeouts: Timeouts,
    *,
    visitor: str | None,
    signal: str | None,
) -> str:
    """What the session is right now: its id, time left, login age, visitor id, privacy."""
    earlier = note_id(session)
    end = timeouts.end_of(session.lifetime, session.created_at)
    idle = timeouts.idle_of(session.lifetime)
    auth_age = session.auth_age
    login = "not logged in" if auth_age is None else f"{duration(auth_age)} ago"
    remember = (
        f"yes: it may idle for {duration(idle)}"
        if session.lifetime is not None and session.lifetime.idle
        else "no"
    )
    return (
        f"<dl class=facts>{id_fact(session, earlier, timeouts)}"
        f"<dt>Idle time left</dt><dd id=idle-left>{duration(session.expires_in)} "
        f"<span class=hint>(every request starts the {duration(idle)} again)</span></dd>"
        f"<dt>Ends at the latest</dt><dd id=absolute-end>{clock(end)} "
        f"<span class=hint>(in {duration(end - time.time())}, however active you are)</span>"
        f"</dd><dt>Logged in</dt><dd id=auth-age>{login}</dd>"
        f"<dt>Remember me</dt><dd id=remember>{remember}</dd>"
        f"{privacy_facts(visitor, signal)}</dl>"
    )


def events_table(logged: list[LoggedEvent], *, now: float) -> str:
    """The security events as a table, newest first; a short note when there are none."""
    if not logged:
        return (
            "<p id=no-events>No security events yet. Log in from two browsers and press "
            '"Log out everywhere" in one: the other\'s next request shows up here.</p>'
        )
    rows = "".join(
        f"<tr><td class=when>{clock(event.at, '%H:%M:%S UTC')}<br>"
        f"<span class=hint>{duration(now - event.at)} ago</span>"
        f"</td><td><span class='badge warn'>{html.escape(event.reason)}</span><br>"
        f"{html.escape(REASONS.get(event.reason, ''))}</td>"
        f"<td><code>{html.escape(event.cookie)}</code></td>"
        f"<td>{html.escape(event.client or '-')}</td></tr>"
        for event in logged
    )
    return (
        "<table id=events><caption>Newest first. Each row is what the kit's "
        "<code>on_security_event</code> hook received: no cookie value, no session data."
        "</caption><thead><tr><th scope=col>When</th><th scope=col>What</th>"
        "<th scope=col>Cookie</th><th scope=col>Client</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def events_body(logged: list[LoggedEvent]) -> str:
    """The security events page's content."""
    return (
        "<p class=lead>Every cookie the site refuses is reported as it happens: altered, "
        "replayed, revoked or expired.</p>"
        f"<section class=card>{events_table(logged, now=time.time())}</section>"
        '<p><a href="/events">Reload</a> to see the newest.</p>'
    )


def home_body(user: object, visitor: str | None, signal: str | None, timeouts: Timeouts) -> str:
    """The public home page's content: who you are, and what to try."""
    who = f"Logged in as <b>{html.escape(str(user))}</b>." if user else "Not logged in."
    rotate = (
        "" if timeouts.rotate_every is None else f", and every {duration(timeouts.rotate_every)}"
    )
    return (
        "<p class=lead>A public page: it works with cookies off. The private area needs "
        "them, and shows your session as sessionkit sees it.</p>"
        f"<section class=card aria-labelledby=you><h2 id=you>You</h2><p>{who}</p>"
        f"<dl class=facts>{privacy_facts(visitor, signal)}</dl></section>"
        "<section class=card aria-labelledby=try><h2 id=try>What to try</h2><ul>"
        '<li><a href="/login">Log in</a>: the session id changes (and again when you log '
        f"out{rotate}); the private area lists the earlier ones.</li>"
        f"<li>Watch the time left: {duration(timeouts.idle)} of inactivity end a session, "
        f"and so does the absolute timeout, {duration(timeouts.absolute)} after login, "
        "however active you are. &ldquo;Remember me&rdquo; lets it idle for a week.</li>"
        '<li>Turn cookies off and open the <a href="/app">private area</a>: after one test '
        "redirect, a page says why it cannot work.</li>"
        "<li>Send Global Privacy Control (<code>Sec-GPC: 1</code>): no visitor id is kept.</li>"
        "<li>Log in from a second browser and press &ldquo;Log out everywhere&rdquo; in one: "
        'the other\'s next request shows up in the <a href="/events">security events</a>.</li>'
        "</ul></section>"
    )


def login_body(csrf: str, facts: str) -> str:
    """The log-in form (``csrf``: its hidden anti-forgery field) and the session facts."""
    return (
        f'<section class=card><form method=post action="/login">{csrf}'
        "<label for=username>User</label>"
        "<input id=username name=username type=text autocomplete=username required>"
        "<label for=password>Password</label>"
        "<input id=password name=password type=password autocomplete=current-password required>"
        "<label class=check><input type=checkbox name=remember value=1> "
        f"Remember me for {duration(REMEMBER_FOR)}</label>"
        "<p class=actions><button>Log in</button></p></form>"
        f"<p class=hint>The demo user is <code>{DEMO_USER}</code>, password "
        f"<code>{DEMO_PASSWORD}</code>: typed at every log-on, never remembered.</p></section>"
        f"<section class=card aria-labelledby=now><h2 id=now>Your session now</h2>{facts}"
        "</section>"
    )


def private_body(
    user: object,
    visits: int,
    csrf: str,
    facts: str,
    recent: list[LoggedEvent],
    *,
    sessions_path: str | None = None,
) -> str:
    """The private area's content: the session facts, the log-out forms, recent events."""
    signed_in = (
        "" if sessions_path is None else f'<a href="{sessions_path}">Where you\'re signed in</a>'
    )
    return (
        f"<p class=lead>Hello {html.escape(str(user))}: visit {visits} in this session.</p>"
        f"<section class=card aria-labelledby=now><h2 id=now>Your session</h2>{facts}"
        f'<div class=actions><form method=post action="/logout">{csrf}'
        "<button class=quiet>Log out</button></form>"
        f'<form method=post action="/logout-everywhere">{csrf}'
        f"<button class=danger>Log out everywhere</button></form>{signed_in}</div></section>"
        "<section class=card aria-labelledby=latest><h2 id=latest>Latest security events</h2>"
        f'{events_table(recent, now=time.time())}<p><a href="/events">All events</a></p>'
        "</section>"
    )


def message(text: str) -> str:
    """A short message with a link back to the log-in form."""
    return f'<section class="card notice"><p>{text}</p><p><a href="/login">Again</a></p></section>'


FORM_EXPIRED = message("The form expired.")
WRONG_CREDENTIALS = message("Wrong user or password.")
#: The answer to a log-in form posted with no cookie at all: cookies are off.
COOKIES_NEEDED = (
    '<section class="card notice"><p class=lead>Logging in needs cookies, and your browser '
    "sent none with the form: it keeps you signed in with one encrypted session cookie.</p>"
    "</section><section class=card aria-labelledby=how><h2 id=how>How to enable cookies</h2>"
    "<ol><li>In your browser's settings, open the privacy or cookies section and allow "
    "cookies for this site (first-party cookies are enough).</li>"
    "<li>If you use private browsing or an extension that blocks cookies, allow this site."
    '</li><li>Then <a href="/login">open the log-in form again</a>.</li></ol></section>'
)
COOKIES_NEEDED_TITLE = "Cookies are needed to log in"
