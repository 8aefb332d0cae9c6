"""A WSGI app named as gunicorn takes it: ``AppSpec``, parsed once for every process.

Forms (gunicorn's ``util.import_app`` grammar, plus its ``app`` fallback):

- ``module:app`` -- an attribute (dotted modules: ``mysite.wsgi:application``);
- ``module:factory()`` and ``module:factory('x', debug=False)`` -- a factory called with
  literal arguments only, read with ``ast.literal_eval`` (never ``eval``);
- ``module`` alone -- its ``application``, else its ``app``;
- ``demo`` -- wsgi-lab's own demo app (``app/``), by a name no team module has.

Runs in the runner (compare, tune) and, staged, inside the server under test
(``loadtest/inserver/byo.py``): stdlib only, and it imports nothing of the project.
"""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import dataclass, field, replace
from typing import Any

DEMO = "demo"  # the demo app's own name on the command line (--app demo, or no --app)
DEMO_MODULE = "app:app"  # where the demo app lives in this repository
FALLBACK_ATTRS = ("application", "app")
MODULE_RE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
ATTR_RE = re.compile(r"[A-Za-z_]\w*")


class AppSpecError(ValueError):
    """A spec that cannot name an app, or an app that cannot be loaded: one line for the user."""


@dataclass(frozen=True)
class AppSpec:
    """One app: its module, the attribute (None: ``application`` then ``app``), the factory call."""

    module: str
    attr: str | None = None
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    called: bool = False  # a factory: ``attr(*args, **kwargs)`` is the app
    demo: bool = False
    text: str = field(default="", compare=False)

    @classmethod
    def parse(cls, text: str | AppSpec) -> AppSpec:
        """The spec in ``text`` (a spec already parsed is itself); AppSpecError naming what is wrong."""
        if isinstance(text, AppSpec):
            return text
        text = text.strip()
        if text == DEMO:
            return cls("app", "app", demo=True, text=DEMO)
        module, sep, rest = text.partition(":")
        if not MODULE_RE.fullmatch(module):
            raise AppSpecError(f"app {text!r}: {module!r} is not a module name (expected MODULE[:APP])")
        if not sep:
            return cls(module, text=text)
        name, paren, call = rest.partition("(")
        if not ATTR_RE.fullmatch(name.strip()):
            raise AppSpecError(f"app {text!r}: {name.strip()!r} is not an attribute name")
        if not paren:
            return cls(module, name.strip(), text=text)
        args, kwargs = literal_call(text, name.strip() + "(" + call)
        return cls(module, name.strip(), args, kwargs, called=True, text=text)

    def __str__(self) -> str:
        return self.text or self.canonical()

    def canonical(self) -> str:
        if self.demo:
            return DEMO
        if self.attr is None:
            return self.module
        if not self.called:
            return f"{self.module}:{self.attr}"
        words = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs]
        return f"{self.module}:{self.attr}({', '.join(words)})"

    @property
    def importable(self) -> str:
        """``module:attr`` without a call, as every server takes it (the demo: its place here)."""
        return DEMO_MODULE if self.demo else f"{self.module}:{self.attr or FALLBACK_ATTRS[0]}"

    def load(self) -> Any:
        """Import the module and return the WSGI callable; AppSpecError for every way that fails."""
        if self.demo:
            module_name, attr = DEMO_MODULE.split(":")
            return getattr(importlib.import_module(module_name), attr)
        try:
            module = importlib.import_module(self.module)
        except ImportError as exc:
            raise AppSpecError(f"app {self}: cannot import {self.module!r}: {exc}") from None
        obj = self.find(module)
        if self.called:
            try:
                obj = obj(*self.args, **dict(self.kwargs))
            except Exception as exc:
                raise AppSpecError(f"app {self}: the factory raised {type(exc).__name__}: {exc}") from None
        if not callable(obj):
            raise AppSpecError(f"app {self}: {type(obj).__name__} object is not a WSGI callable")
        return obj

    def resolved(self) -> AppSpec:
        """A lone module's spec with the attribute it was found under (its ``application`` or ``app``)."""
        if self.demo or self.attr is not None:
            return self
        module = importlib.import_module(self.module)
        return replace(self, attr=next(n for n in FALLBACK_ATTRS if hasattr(module, n)))

    def find(self, module: Any) -> Any:
        names = (self.attr,) if self.attr else FALLBACK_ATTRS
        for name in names:
            if hasattr(module, name):
                return getattr(module, name)
        wanted = " or ".join(repr(n) for n in names)
        raise AppSpecError(f"app {self}: module {self.module!r} has no attribute {wanted}")

    def server_form(self, kind: str) -> list[str] | None:
        """How server ``kind`` takes this app directly (options then the app), None where it cannot.

        gunicorn takes every form as written; granian a bare factory with ``--factory``,
        waitress with ``--call``, uWSGI as ``module:factory()``; the dev server none. A None is served
        through the identity wrapper, which calls the factory itself (and finds a lone
        module's ``application`` or ``app``).
        """
        if self.attr is None:
            return None
        if not self.called:
            return [self.importable]
        bare = f"{self.module}:{self.attr}"
        if kind == "gunicorn":
            return [self.canonical()]
        if self.args or self.kwargs:
            return None
        return {"granian": ["--factory", bare], "waitress": ["--call", bare], "uwsgi": [bare + "()"]}.get(
            kind
        )


def literal_call(text: str, call: str) -> tuple[tuple[Any, ...], tuple[tuple[str, Any], ...]]:
    """The literal arguments of ``name(...)``; AppSpecError for anything but literals."""
    try:
        node = ast.parse(call, mode="eval").body
    except SyntaxError:
        raise AppSpecError(f"app {text!r}: the call is not valid Python") from None
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise AppSpecError(f"app {text!r}: expected MODULE:FACTORY(literal arguments)")
    try:
        args = tuple(ast.literal_eval(a) for a in node.args)
        kwargs = tuple((k.arg, ast.literal_eval(k.value)) for k in node.keywords if k.arg)
    except ValueError:
        raise AppSpecError(
            f"app {text!r}: factory arguments must be literals (strings, numbers, ...)"
        ) from None
    if len(kwargs) != len(node.keywords):
        raise AppSpecError(f"app {text!r}: factory arguments must be literals, not **")
    return args, kwargs
