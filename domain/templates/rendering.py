"""Renders staff-written templates in Jinja2's immutable sandbox; every failure becomes a TemplateError."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from functools import lru_cache, wraps
from typing import Any

from jinja2 import StrictUndefined, Template, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from domain.messages.segments import MAX_SMS_CHARACTERS
from domain.templates.model import MessageTemplate, RenderedMessage, TemplateError
from domain.vocabulary import Channel

MAX_TEXT_CHARACTERS = 10_000
MAX_HTML_BYTES = 200 * 1024
#: Bounds on what one expression may ask for, so a template cannot make the renderer build huge values.
MAX_LOOP_ITEMS = 1_000
MAX_BUILT_LENGTH = MAX_HTML_BYTES
MAX_FORMAT_WIDTH = 1_000
MAX_EXPONENT = 1_000
MAX_NESTING = 16
COMPILED_CACHE_SIZE = 4_096

_PLAIN_TYPES = frozenset({str, int, float, bool, Decimal, date, datetime})
_PADDING_STR_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})
_SIZED_FILTERS = ("center", "indent", "batch", "slice", "wordwrap", "truncate")
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*:([^{}]*)\}")
_UNDEFINED_NAME = re.compile(r"^'([^']+)' is undefined$")


def render_text(
    source: str, variables: Mapping[str, object], *, max_characters: int = MAX_TEXT_CHARACTERS
) -> str:
    """Render a plain-text source (SMS, WhatsApp, Telegram, email subject or text part); nothing is escaped."""
    return _render(source, variables, escape=False, limit=max_characters, measure=len)


def render_html(source: str, variables: Mapping[str, object], *, max_bytes: int = MAX_HTML_BYTES) -> str:
    """Render an email HTML body with autoescaping, so customer data cannot inject markup."""
    return _render(source, variables, escape=True, limit=max_bytes, measure=_utf8_length)


def render_template(template: MessageTemplate, variables: Mapping[str, object]) -> RenderedMessage:
    """Fill in every part of ``template`` for one recipient."""
    body_limit = MAX_SMS_CHARACTERS if template.channel is Channel.SMS else MAX_TEXT_CHARACTERS
    return RenderedMessage(
        body=render_text(template.body, variables, max_characters=body_limit),
        subject=None if template.subject is None else render_text(template.subject, variables),
        html_body=None if template.html_body is None else render_html(template.html_body, variables),
    )


def parse_template(source: str) -> nodes.Template:
    """The syntax tree of ``source``, for validation; a syntax error becomes a TemplateError."""
    try:
        return _sandbox(False).parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(_syntax_message(exc)) from None


def template_globals() -> frozenset[str]:
    """Names every template can use without declaring them (range, cycler, ...)."""
    return frozenset(_sandbox(False).globals)


def plain_value(name: str, value: object, depth: int = 0) -> object:
    """``value`` as plain data a template may see, or a TemplateError naming the variable."""
    if value is None or type(value) in _PLAIN_TYPES:
        return value
    if isinstance(value, str):
        # Subclasses such as markupsafe.Markup could smuggle unescaped HTML; keep only the text.
        return value.value if isinstance(value, Enum) and isinstance(value.value, str) else str.__str__(value)
    if depth >= MAX_NESTING:
        raise TemplateError(f"The value for '{name}' is nested more than {MAX_NESTING} levels deep.")
    if isinstance(value, dict):
        plain: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TemplateError(f"The value for '{name}' has a key that is not text: {key!r}.")
            plain[key] = plain_value(f"{name}.{key}", item, depth + 1)
        return plain
    if isinstance(value, list | tuple):
        return [plain_value(f"{name}[{index}]", item, depth + 1) for index, item in enumerate(value)]
    raise _not_plain(name, value)


def _render(
    source: str,
    variables: Mapping[str, object],
    *,
    escape: bool,
    limit: int,
    measure: Callable[[str], int],
) -> str:
    compiled = _compiled(source, escape)
    context = {name: plain_value(name, value) for name, value in variables.items()}
    chunks: list[str] = []
    size = 0
    try:
        # Streaming lets a runaway loop stop at the cap instead of first building the whole output.
        for chunk in compiled.generate(context):
            size += measure(chunk)
            if size > limit:
                raise TemplateError(f"The rendered message is longer than the limit of {limit:,}.")
            chunks.append(chunk)
    except TemplateError:
        raise
    except SecurityError as exc:
        raise TemplateError(
            f"The template tried to use something templates may not touch: {str(exc).rstrip('.')}. "
            "Only the declared variables and ordinary filters are available."
        ) from None
    except UndefinedError as exc:
        raise TemplateError(_undefined_message(exc)) from None
    except Exception as exc:
        # Anything a staff member's template can provoke (TypeError, ZeroDivisionError, ...) is their
        # mistake to fix, not a server error.
        raise TemplateError(f"The template could not be rendered: {type(exc).__name__}: {exc}") from None
    return "".join(chunks)


@lru_cache(maxsize=COMPILED_CACHE_SIZE)
def _compiled(source: str, escape: bool) -> Template:
    try:
        return _sandbox(escape).from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(_syntax_message(exc)) from None


@lru_cache(maxsize=2)
def _sandbox(escape: bool) -> _GuardedSandbox:
    env = _GuardedSandbox(autoescape=escape, undefined=StrictUndefined, keep_trailing_newline=False)
    env.globals.pop("lipsum", None)  # generates arbitrarily long text on request
    env.globals["range"] = _bounded_range
    for name in _SIZED_FILTERS:
        env.filters[name] = _bounded_filter(env.filters[name])
    env.filters["format"] = _checked_format_filter(env.filters["format"])
    env.filters["replace"] = _checked_replace_filter(env.filters["replace"])
    return env


class _GuardedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, also refusing operations that would build enormous values."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repeat(left, right)
            _check_repeat(right, left)
        elif operator == "**" and isinstance(right, int) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent {right} is larger than {MAX_EXPONENT}")
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left)
        return super().call_binop(context, operator, left, right)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        # The sandbox wraps str.format; the wrapped bound method tells us which string is the format.
        target = getattr(obj, "__wrapped__", obj)
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str):
            method = getattr(target, "__name__", "")
            if method in _PADDING_STR_METHODS:
                _check_sizes((*args, *kwargs.values()))
            elif method in ("format", "format_map"):
                _check_brace_format(owner)
            elif method == "replace" and len(args) >= 2:
                _check_replacement(owner, args[0], args[1])
        return super().call(context, obj, *args, **kwargs)


def _bounded_range(*args: int) -> range:
    items = range(*args)
    if len(items) > MAX_LOOP_ITEMS:
        raise SecurityError(f"range() may produce at most {MAX_LOOP_ITEMS:,} items, not {len(items):,}")
    return items


def _bounded_filter(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def bounded(value: Any, *args: Any, **kwargs: Any) -> Any:
        _check_sizes((*args, *kwargs.values()))
        return original(value, *args, **kwargs)

    return bounded


def _checked_format_filter(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def checked(value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            _check_percent_format(value)
        return original(value, *args, **kwargs)

    return checked


def _checked_replace_filter(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def checked(eval_ctx: Any, value: Any, old: Any, new: Any, *args: Any, **kwargs: Any) -> Any:
        _check_replacement(value, old, new)
        return original(eval_ctx, value, old, new, *args, **kwargs)

    return checked


def _check_replacement(text: Any, old: Any, new: Any) -> None:
    # Replacing "" inserts ``new`` between every character, so chained replaces grow geometrically.
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return
    occurrences = len(text) + 1 if old == "" else text.count(old)
    if len(text) + occurrences * (len(new) - len(old)) > MAX_BUILT_LENGTH:
        raise SecurityError(f"the replacement would build text longer than {MAX_BUILT_LENGTH:,} characters")


def _check_sizes(arguments: tuple[Any, ...]) -> None:
    for argument in arguments:
        if isinstance(argument, int) and abs(argument) > MAX_BUILT_LENGTH:
            raise SecurityError(f"size {argument} is larger than {MAX_BUILT_LENGTH:,}")


def _check_repeat(sequence: Any, times: Any) -> None:
    if isinstance(sequence, str | list | tuple) and isinstance(times, int):
        if len(sequence) * times > MAX_BUILT_LENGTH:
            raise SecurityError(f"repeating a value {times} times would exceed {MAX_BUILT_LENGTH:,} items")


def _check_percent_format(fmt: str) -> None:
    for match in _PERCENT_SPEC.finditer(fmt):
        _check_widths(match.groups())


def _check_brace_format(fmt: str) -> None:
    for spec in _BRACE_SPEC.findall(fmt):
        _check_widths(tuple(re.findall(r"\d+", spec)))


def _check_widths(widths: tuple[str | None, ...]) -> None:
    for width in widths:
        if width == "*" or (width is not None and int(width) > MAX_FORMAT_WIDTH):
            raise SecurityError(f"format width {width} is not allowed (at most {MAX_FORMAT_WIDTH})")


def _utf8_length(chunk: str) -> int:
    return len(chunk.encode("utf-8", "surrogatepass"))


def _syntax_message(exc: TemplateSyntaxError) -> str:
    return f"Template syntax error on line {exc.lineno}: {exc.message}"


def _undefined_message(exc: UndefinedError) -> str:
    match = _UNDEFINED_NAME.match(exc.message or "")
    if match:
        return f"No value was given for the variable '{match.group(1)}'."
    return f"The template refers to something that is missing: {exc.message}."


def _not_plain(name: str, value: object) -> TemplateError:
    return TemplateError(
        f"The value for '{name}' is a {type(value).__name__}; templates accept only text, numbers, "
        "dates, and lists or dicts of those."
    )
