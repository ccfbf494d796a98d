"""A griffe extension for the API reference: the source's Sphinx habits, read as Markdown.

The docstrings name other objects the Sphinx way (``:class:`~sessionkit.gate.Gate```,
``:meth:`Session.login```); mkdocstrings renders Markdown, so each role becomes a code
span linked to the object's entry in the reference. Names are resolved from where the
docstring is (its class, its module, the package); a private or unknown name stays a
plain code span. A paragraph ending in ``::`` introduces an indented literal block, which
becomes a fenced code block. Attributes and constants are documented by ``#:`` comments
on the lines above them; those comments become their docstrings.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|meth|func|attr|data|mod|exc|obj):`(~?)([^`]+)`")


class SphinxRoles(griffe.Extension):
    """Rewrite the roles in every docstring of the package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Walk the package and rewrite each docstring."""
        objects = _walk(pkg)
        for obj in objects:
            if obj.docstring is None and obj.is_attribute:
                _comment_docstring(obj)
        for obj in objects:
            if obj.docstring is not None:
                obj.docstring.value = _markdown(obj, obj.docstring.value)


def _markdown(obj: griffe.Object, text: str) -> str:
    out: list[str] = []
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.rstrip().endswith("::") or line.strip() == "::":
            out.append(_ROLE.sub(lambda m: _link(obj, m), line))
            continue
        out.append(_ROLE.sub(lambda m: _link(obj, m), line.rstrip()[:-1]))
        block: list[str] = []
        while index < len(lines) and (not lines[index].strip() or lines[index][:1].isspace()):
            block.append(lines[index])
            index += 1
        while block and not block[-1].strip():
            block.pop()
        indent = min(len(b) - len(b.lstrip()) for b in block if b.strip())
        code = [_ROLE.sub(lambda m: m.group(2), b[indent:]) for b in block]
        out += ["", "```", *code, "```", ""]
    return "\n".join(out)


def _walk(obj: griffe.Object) -> list[griffe.Object]:
    found = [obj]
    for member in obj.members.values():
        if not member.is_alias:
            found.extend(_walk(member))  # type: ignore[arg-type]
    return found


def _comment_docstring(obj: griffe.Object) -> None:
    if obj.lineno is None or obj.filepath is None or isinstance(obj.filepath, list):
        return
    lines = obj.lines_collection[obj.filepath]
    comment: list[str] = []
    index = obj.lineno - 2  # the line above, 0-based
    while index >= 0 and lines[index].strip().startswith("#:"):
        comment.insert(0, lines[index].strip()[2:].strip())
        index -= 1
    if comment:
        obj.docstring = griffe.Docstring(
            " ".join(comment), lineno=index + 2, endlineno=obj.lineno - 1, parent=obj
        )


def _link(origin: griffe.Object, match: re.Match[str]) -> str:
    short, name = match.group(1) == "~", match.group(2)
    text = name.rsplit(".", 1)[-1] if short else name
    target = _resolve(origin, name)
    if target is None or any(part.startswith("_") for part in target.split(".")):
        return f"`{text}`"
    return f"[`{text}`][{target}]"


def _resolve(origin: griffe.Object, name: str) -> str | None:
    package = origin.package
    scopes: list[griffe.Object] = []
    scope: griffe.Object | None = origin
    while scope is not None:
        scopes.append(scope)
        scope = scope.parent
    candidates = [name] + [f"{s.path}.{name}" for s in scopes]
    for candidate in candidates:
        try:
            found = package.modules_collection[candidate]
        except (KeyError, ValueError):
            continue
        try:
            target = found.final_target if found.is_alias else found
        except griffe.AliasResolutionError:
            return None
        # An undocumented member has no entry of its own: link to what holds it.
        while target.docstring is None and target.parent is not None and not target.is_module:
            target = target.parent
        return str(target.path)
    head = name.split(".", 1)[0]
    for module in _walk(package):
        if module.is_module and head in module.members and not module.members[head].is_alias:
            return f"{module.path}.{name}"
    return None
