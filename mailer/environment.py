"""Jinja2 environments: a company's template directory first, then the packaged defaults.

HTML templates are autoescaped; text templates (`.txt`) are not. One environment is
cached per template directory, so Jinja's own template cache is reused across mails.
"""

from __future__ import annotations

import traceback
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    select_autoescape,
)

_CENT = Decimal("0.01")
_TEMPLATE_SUFFIXES = (".txt", ".html")


class TemplateProblem(ValueError):
    """A company's templates cannot be used (missing folder, syntax error, unknown name),
    worded for the admin who edits them: the file and line when Jinja knows them."""


def money(amount: Decimal, currency: str) -> str:
    """`Decimal("1234.5"), "USD"` -> `"1,234.50 USD"` (two decimals, never a float)."""
    if isinstance(amount, float):
        raise TypeError("money must be Decimal, not float")
    exact = Decimal(amount).quantize(_CENT, rounding=ROUND_HALF_UP)
    return f"{exact:,.2f} {currency}"


def day(value: date) -> str:
    """`date(2024, 5, 1)` -> `"May 1, 2024"`."""
    return f"{value:%b} {value.day}, {value.year}"


def environment(template_dir: str = "") -> Environment:
    """The environment for a company's `template_dir` ("" = packaged templates only).

    Raises `TemplateProblem` (a `ValueError`) when a template directory is configured but
    does not exist: a typo must not silently fall back to the defaults.
    """
    if template_dir and not Path(template_dir).is_dir():
        raise TemplateProblem(f"template_dir {template_dir!r} is not a directory")
    return _cached_environment(str(Path(template_dir).resolve()) if template_dir else "")


def template_names(kind: str) -> tuple[str, ...]:
    """The templates one mail of `kind` is made of, as `mailer.render` loads them."""
    return (f"{kind}.subject.txt", f"{kind}.txt", f"{kind}.html")


def check_templates(template_dir: str, kind: str) -> None:
    """Compile `kind`'s templates, so a syntax error in a company's override stops its mail
    before any is rendered or queued, with a `TemplateProblem` naming the file and line."""
    env = environment(template_dir)
    for name in template_names(kind):
        try:
            env.get_template(name)
        except TemplateError as exc:
            raise TemplateProblem(describe(exc)) from exc


def describe(exc: BaseException) -> str:
    """`exc` as "FILE, line N: what Jinja said" (just what it said when it knows no place).

    A syntax error carries its file and line; an error while rendering (an unknown name
    under `StrictUndefined`, or Python's own, as `{{ 'a' + 1 }}` raises) has them only in
    the traceback Jinja rewrites to the template.
    """
    if isinstance(exc, TemplateSyntaxError):
        where, line = exc.filename or exc.name, exc.lineno
    else:
        frames = _template_frames(exc)
        where, line = (frames[-1].filename, frames[-1].lineno) if frames else (None, None)
    if isinstance(exc, TemplateError):
        message = exc.message or type(exc).__name__
    else:
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return f"{where}, line {line}: {message}" if where else message


def template_failure(exc: BaseException) -> TemplateProblem | None:
    """`exc` as a `TemplateProblem` when a template caused it: a Jinja error, or any error
    raised while a template ran (`{{ 'a' + 1 }}`, a division by zero in an override); None
    for anything else, which is not the template editor's to fix."""
    if isinstance(exc, TemplateProblem):
        return exc
    if isinstance(exc, TemplateError) or _template_frames(exc):
        return TemplateProblem(describe(exc))
    return None


def _template_frames(exc: BaseException) -> list[traceback.FrameSummary]:
    return [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(_TEMPLATE_SUFFIXES)]


@lru_cache(maxsize=64)
def _cached_environment(template_dir: str) -> Environment:
    loaders = [FileSystemLoader(template_dir)] if template_dir else []
    loaders.append(PackageLoader("mailer", "templates"))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["money"] = money
    env.filters["day"] = day
    return env
