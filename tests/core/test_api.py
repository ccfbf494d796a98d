from __future__ import annotations

import subprocess
import sys

import sessionkit


def test_exported_names_are_pinned() -> None:
    assert sorted(sessionkit.__all__) == [
        "ConfigurationError",
        "ForgeryPolicy",
        "LifecycleEvent",
        "SecurityEvent",
        "SensitiveData",
        "Session",
        "SessionKit",
        "SessionKitError",
        "SessionTooLarge",
        "UnserializableValue",
        "generate_key",
    ]
    for name in sessionkit.__all__:
        assert getattr(sessionkit, name).__doc__


def test_errors_form_one_tree() -> None:
    assert issubclass(sessionkit.ConfigurationError, sessionkit.SessionKitError)
    assert issubclass(sessionkit.ConfigurationError, ValueError)
    assert issubclass(sessionkit.SessionTooLarge, sessionkit.SessionKitError)
    assert issubclass(sessionkit.UnserializableValue, TypeError)
    assert issubclass(sessionkit.SensitiveData, sessionkit.SessionKitError)
    assert issubclass(sessionkit.SensitiveData, ValueError)


def test_session_is_a_dict() -> None:
    assert issubclass(sessionkit.Session, dict)


def test_core_imports_no_web_framework() -> None:
    code = (
        "import sys, sessionkit, sessionkit.wsgi, sessionkit.asgi;"
        "k = sessionkit.SessionKit(secret_keys=[sessionkit.generate_key()]);"
        "k.open('a=b').response_headers([]);"
        "bad = {'starlette', 'flask', 'django', 'werkzeug', 'fastapi'} & set(sys.modules);"
        "print(sorted(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "[]"
