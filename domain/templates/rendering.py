"""Renders staff-written templates in Jinja2's immutable sandbox within a cost budget; every failure becomes a
TemplateError."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from functools import lru_cache, wraps
from string import Formatter
from typing import Any

from jinja2 import StrictUndefined, Template, meta, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from jinja2.visitor import NodeTransformer

from domain.messages.segments import MAX_SMS_CHARACTERS
from domain.templates.model import MessageTemplate, RenderedMessage, TemplateError
from domain.templates.nameless import is_nameless, without_name
from domain.vocabulary import Channel

MAX_TEXT_CHARACTERS = 10_000
MAX_HTML_BYTES = 200 * 1024
#: A template's source may be this long at most (the HTML body: MAX_HTML_BYTES); reading it is work too.
MAX_SOURCE_CHARACTERS = 50_000
#: The budget of one message, all its parts together, far above what a real message needs. A step is one pass
#: through a for loop, one call (of a macro, a method or a function) or one use of a filter or test; work is
#: the characters that filters, comparisons, joins and output go through, and the pieces of loop, macro and
#: block bodies each time they run.
MAX_RENDER_STEPS = 10_000
MAX_RENDER_WORK = 1_000_000
#: What one list or dict item, or one piece of a template run once, counts as in characters: Python handles
#: those one by one, and text in C, so each costs about as much as this many characters.
ITEM_WEIGHT = 16
#: Bounds on what one expression may ask for, so a template cannot make the renderer build huge values. The
#: largest text, list or dict is counted all the way down (a part shared twice counts twice, as it is written
#: out or compared twice).
MAX_BUILT_LENGTH = MAX_HTML_BYTES
MAX_LOOP_ITEMS = 1_000
MAX_FORMAT_WIDTH = 1_000
MAX_EXPONENT = 1_000
#: Whole numbers have at most this many digits: about the range of a float, far beyond any amount or count a
#: message shows, and small enough that arithmetic on them costs nothing.
MAX_INTEGER_DIGITS = 308
MAX_NESTING = 16
COMPILED_CACHE_SIZE = 4_096

_PLAIN_TYPES = frozenset({str, int, float, bool, Decimal, date, datetime})
_PADDING_STR_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})
_REFUSED_STR_METHODS = frozenset({"translate", "maketrans"})
_SIZED_FILTERS = ("center", "batch", "slice", "truncate")
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_UNDEFINED_NAME = re.compile(r"^'([^']+)' is undefined$")
_JSON_INDENT_LIMIT = 8
_INTEGER_LIMIT = 10**MAX_INTEGER_DIGITS
#: Bits of the largest whole number allowed; a result certain to have more is refused before it is computed.
_INTEGER_BITS = (_INTEGER_LIMIT - 1).bit_length()


class _Overspent(Exception):
    """A render went past its budget. Not a ValueError, so no filter that forgives bad values can swallow it."""


class _NotAllowed(Exception):
    """Something templates cannot do because it would let them get round the budget."""


_BUDGET: ContextVar[_Budget | None] = ContextVar("template_render_budget", default=None)
_TIME_LIMIT: ContextVar[tuple[float, float] | None] = ContextVar("template_time_limit", default=None)


def render_text(
    source: str, variables: Mapping[str, object], *, max_characters: int = MAX_TEXT_CHARACTERS
) -> str:
    """Render a plain-text source (SMS, WhatsApp, Telegram, email subject or text part); nothing is escaped."""
    return _render(source, variables, escape=False, limit=max_characters, measure=len, budget=_Budget())


def render_html(source: str, variables: Mapping[str, object], *, max_bytes: int = MAX_HTML_BYTES) -> str:
    """Render an email HTML body with autoescaping, so customer data cannot inject markup."""
    return _render(source, variables, escape=True, limit=max_bytes, measure=_utf8_length, budget=_Budget())


def render_template(template: MessageTemplate, variables: Mapping[str, object]) -> RenderedMessage:
    """Fill in every part of ``template`` for one recipient; the parts share one budget."""
    budget = _Budget()

    def text(source: str, limit: int) -> str:
        return _render(source, variables, escape=False, limit=limit, measure=len, budget=budget)

    body_limit = MAX_SMS_CHARACTERS if template.channel is Channel.SMS else MAX_TEXT_CHARACTERS
    return RenderedMessage(
        body=text(template.body, body_limit),
        subject=None if template.subject is None else text(template.subject, MAX_TEXT_CHARACTERS),
        html_body=None
        if template.html_body is None
        else _render(
            template.html_body,
            variables,
            escape=True,
            limit=MAX_HTML_BYTES,
            measure=_utf8_length,
            budget=budget,
        ),
    )


@contextmanager
def render_time_limit(seconds: float) -> Iterator[None]:
    """Renders started inside stop with a TemplateError once ``seconds`` have passed.

    For text a person has just typed: the renders check the clock as they go, so a costly one ends by
    itself, even on a thread nobody can stop from outside.
    """
    token = _TIME_LIMIT.set((time.monotonic() + seconds, seconds))
    try:
        yield
    finally:
        _TIME_LIMIT.reset(token)


def parse_template(source: str) -> nodes.Template:
    """The syntax tree of ``source``, for validation; a syntax error becomes a TemplateError."""
    try:
        return _sandbox(False).parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(_syntax_message(exc)) from None
    except (RecursionError, ValueError, MemoryError) as exc:
        raise TemplateError(_unreadable_message(exc)) from None


def template_globals() -> frozenset[str]:
    """Names every template can use without declaring them (range, cycler, ...)."""
    return frozenset(_sandbox(False).globals)


def plain_value(name: str, value: object, depth: int = 0) -> object:
    """``value`` as plain data a template may see, or a TemplateError naming the variable."""
    if value is None or type(value) in _PLAIN_TYPES or is_nameless(value):
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
    budget: _Budget,
) -> str:
    compiled = _compiled(source, escape)
    context = {name: plain_value(name, value) for name, value in variables.items()}
    chunks: list[str] = []
    size = 0
    token = _BUDGET.set(budget)
    try:
        # Streaming lets a runaway loop stop at the cap instead of first building the whole output.
        for chunk in compiled.generate(context):
            size += measure(chunk)
            if size > limit:
                raise TemplateError(f"The rendered message is longer than the limit of {limit:,}.")
            chunks.append(chunk)
    except TemplateError:
        raise
    except _Overspent as exc:
        raise TemplateError(f"The template does too much work: {exc}.") from None
    except _NotAllowed as exc:
        raise TemplateError(f"The template cannot do this: {exc}.") from None
    except SecurityError as exc:
        raise TemplateError(
            f"The template tried to use something templates may not touch: {str(exc).rstrip('.')}. "
            "Only the declared variables and ordinary filters are available."
        ) from None
    except UndefinedError as exc:
        raise TemplateError(_undefined_message(exc, _missing(source, escape, context))) from None
    except RecursionError:
        raise TemplateError(
            "The template calls itself too deeply (a macro, block or loop that keeps calling itself)."
        ) from None
    except MemoryError:
        raise TemplateError(
            "The template does too much work: it needs more memory than a message may."
        ) from None
    except Exception as exc:
        # Anything a staff member's template can provoke (TypeError, ZeroDivisionError, ...) is their
        # mistake to fix, not a server error.
        raise TemplateError(f"The template could not be rendered: {type(exc).__name__}: {exc}") from None
    finally:
        _BUDGET.reset(token)
    return without_name("".join(chunks))


@lru_cache(maxsize=COMPILED_CACHE_SIZE)
def _compiled(source: str, escape: bool) -> Template:
    try:
        return _sandbox(escape).from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(_syntax_message(exc)) from None
    except (RecursionError, ValueError, MemoryError) as exc:
        raise TemplateError(_unreadable_message(exc)) from None


# --- the budget -------------------------------------------------------------------------------------------


class _Budget:
    """What one render has spent so far; past any limit it stops with _Overspent."""

    __slots__ = ("deadline", "seconds", "steps", "weights", "work")

    def __init__(self) -> None:
        self.steps = 0
        self.work = 0
        limit = _TIME_LIMIT.get()
        self.deadline: float | None = None if limit is None else limit[0]
        self.seconds = 0.0 if limit is None else limit[1]
        # Containers the render has already measured, by identity (kept alive so an id is never reused).
        self.weights: dict[int, tuple[object, int]] = {}

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_RENDER_STEPS:
            raise _Overspent(f"more than {MAX_RENDER_STEPS:,} loop steps and calls for one message")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise _Overspent(f"it did not finish within {self.seconds:g} seconds")

    def spend(self, amount: int) -> None:
        self.work += amount
        if self.work > MAX_RENDER_WORK:
            raise _Overspent(
                f"more than {MAX_RENDER_WORK:,} characters pass through its filters, comparisons and output "
                f"for one message (a list item counts as {ITEM_WEIGHT})"
            )
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise _Overspent(f"it did not finish within {self.seconds:g} seconds")

    def pay_for(self, value: object, *, deep: bool = True) -> None:
        """Spend what it costs to go through ``value`` once: all of it (written out, compared), or, when not
        ``deep``, its own characters or items (a filter that handles each item without looking inside)."""
        if type(value) is str:
            self.spend(len(value))
        elif deep:
            self.spend(self.weight(value, MAX_RENDER_WORK - self.work + 1))
        else:
            self.spend(_shallow_weight(value))

    def weight(self, value: object, limit: int) -> int:
        """Characters and items in ``value``, counting shared parts each time; stops counting past ``limit``."""
        if isinstance(value, str | bytes):
            return len(value)
        if not isinstance(value, list | tuple | dict | Namespace):
            return 1
        known = self.weights.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        total = 1
        for item in _members(value):
            if isinstance(item, Namespace):
                raise _NotAllowed("a namespace cannot be put inside a list, a dict or another namespace")
            total += ITEM_WEIGHT + self.weight(item, limit - total)
            if total > limit:
                return total
        if not isinstance(value, Namespace):  # a namespace can change; its weight is measured each time
            self.weights[id(value)] = (value, total)
        return total


def _shallow_weight(value: object) -> int:
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, list | tuple | dict):
        return 1 + len(value) * ITEM_WEIGHT
    return 1


def _members(value: list[Any] | tuple[Any, ...] | dict[Any, Any] | Namespace) -> Iterator[object]:
    if isinstance(value, Namespace):
        yield from object.__getattribute__(value, "_Namespace__attrs").values()
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield item
    else:
        yield from value


def _step() -> None:
    budget = _BUDGET.get()
    if budget is not None:  # compile-time constant folding runs outside any render
        budget.step()


def _spend_on(*values: object, deep: bool = True) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        for value in values:
            budget.pay_for(value, deep=deep)


def _built(value: Any) -> Any:
    """``value`` as built by the template, refused when too large; lazy sequences are checked item by item."""
    kind = type(value)
    if kind is str or isinstance(value, str | bytes):
        if len(value) > MAX_BUILT_LENGTH:
            raise _too_long()
        budget = _BUDGET.get()
        if budget is not None:
            budget.spend(len(value))
    elif kind is int:
        if not -_INTEGER_LIMIT < value < _INTEGER_LIMIT:
            raise _too_many_digits()
    elif isinstance(value, list | tuple | dict | Namespace):
        # Every value must stay small all the way down, so writing it out or comparing it is cheap; building
        # it costs its own items (what it shares with other values was paid for when they were built).
        budget = _BUDGET.get()
        weight = _shallow_weight(value) if budget is None else budget.weight(value, MAX_BUILT_LENGTH)
        if weight > MAX_BUILT_LENGTH:
            raise _too_long()
        if budget is not None:
            budget.spend(_shallow_weight(value))
    elif isinstance(value, Iterator):
        return _checked_items(value)
    return value


def _checked_items(items: Iterator[Any]) -> Iterator[Any]:
    for item in items:
        yield _built(item)


def _counted_loop(iterable: Iterable[Any]) -> Iterable[Any]:
    """Every pass of a for loop is a step of the budget."""
    budget = _BUDGET.get()
    return iterable if budget is None else _counted(iterable, budget)


def _counted(iterable: Iterable[Any], budget: _Budget) -> Iterator[Any]:
    step = budget.step
    for item in iterable:
        step()
        yield item


def _compared(value: Any) -> Any:
    budget = _BUDGET.get()
    if budget is not None:
        budget.pay_for(value)
    return value


def _written(value: Any) -> Any:
    """Jinja's finalize: everything written out, into the message or into a captured block, is work."""
    budget = _BUDGET.get()
    if budget is not None:
        budget.pay_for(value)
    return value


def _paid(amount: int) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.spend(amount)


class _MeteredTree(NodeTransformer):
    """Rewrites a parsed template so its loops, literals, joins and comparisons report to the budget.

    A body that runs again and again (a loop's, a macro's, a block's or a call block's) pays for its size each
    time it runs, so a long body inside a loop costs what it does.
    """

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self._pay_for_body(node)
        node.iter = _hook("metered_loop", node.iter)
        return node

    def visit_Macro(self, node: nodes.Macro) -> nodes.Node:
        return self._pay_for_body(node)

    def visit_CallBlock(self, node: nodes.CallBlock) -> nodes.Node:
        return self._pay_for_body(node)

    def visit_Block(self, node: nodes.Block) -> nodes.Node:
        return self._pay_for_body(node)

    def _pay_for_body(self, node: nodes.For | nodes.Macro | nodes.CallBlock | nodes.Block) -> nodes.Node:
        size = sum(1 + sum(1 for _ in statement.find_all(nodes.Node)) for statement in node.body)
        self.generic_visit(node)
        node.body.insert(
            0, nodes.ExprStmt(_hook("metered_body", nodes.Const(size * ITEM_WEIGHT)), lineno=node.lineno)
        )
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        return _hook("metered_value", self.generic_visit(node))

    def visit_List(self, node: nodes.List) -> nodes.Node:
        return _hook("metered_value", self.generic_visit(node))

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        return _hook("metered_value", self.generic_visit(node))

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        self.generic_visit(node)
        return _hook("metered_value", node) if node.ctx == "load" else node

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        self.generic_visit(node)
        node.expr = _hook("metered_comparison", node.expr)
        for operand in node.ops:
            operand.expr = _hook("metered_comparison", operand.expr)
        return node


#: What the metered tree calls, by the names the compiled template finds them under on the environment.
_HOOKS = {
    "metered_loop": _counted_loop,
    "metered_value": _built,
    "metered_comparison": _compared,
    "metered_body": _paid,
}


def _hook(name: str, node: nodes.Node) -> nodes.Call:
    return nodes.Call(nodes.EnvironmentAttribute(name), [node], [], None, None, lineno=node.lineno)


class _MeteredCodeGenerator(CodeGenerator):
    """Compiles the metered tree; the budget hooks are called directly, not through the sandbox's call."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        _MeteredTree().visit(node)
        super().visit_Template(node, frame)

    def visit_Call(self, node: nodes.Call, frame: Frame, forward_caller: bool = False) -> None:
        target = node.node
        if isinstance(target, nodes.EnvironmentAttribute) and target.name in _HOOKS:
            self.write(f"environment.{target.name}(")
            self.visit(node.args[0], frame)
            self.write(")")
            return
        super().visit_Call(node, frame, forward_caller=forward_caller)


# --- the sandbox ------------------------------------------------------------------------------------------


@lru_cache(maxsize=2)
def _sandbox(escape: bool) -> _GuardedSandbox:
    env = _GuardedSandbox(
        autoescape=escape, undefined=StrictUndefined, keep_trailing_newline=False, finalize=_written
    )
    env.globals.pop("lipsum", None)  # generates arbitrarily long text on request
    env.globals["range"] = _bounded_range
    env.globals["namespace"] = _BoundedNamespace
    for name, check in _FILTER_CHECKS.items():
        env.filters[name] = _checked_filter(env.filters[name], check)
    env.filters["join"] = _checked_join(env.filters["join"])
    for name, function in list(env.filters.items()):
        env.filters[name] = _metered(function, deep=name not in _ITEM_BY_ITEM_FILTERS)
    for name, function in list(env.tests.items()):
        env.tests[name] = _metered(function, deep=name in _COMPARING_TESTS)
    for name, hook in _HOOKS.items():
        setattr(env, name, hook)
    return env


class _GuardedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, also refusing operations that would build enormous values or run too long."""

    code_generator_class = _MeteredCodeGenerator
    intercepted_binops = frozenset({"+", "-", "*", "**", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_product(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left)
        elif operator == "+":
            _check_sum_of(left, right)
        return _built(super().call_binop(context, operator, left, right))

    def getitem(self, obj: Any, argument: Any) -> Any:
        value = super().getitem(obj, argument)
        return _built(value) if isinstance(argument, slice) else value

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _step()
        if isinstance(obj, LoopContext) and args:
            # loop(children) in a recursive loop: its passes are loop steps like any other.
            args = (_counted_loop(args[0]), *args[1:])
        # The sandbox wraps str.format; the wrapped bound method tells us which string is the format.
        target = getattr(obj, "__wrapped__", obj)
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str | list | tuple | dict):
            method = getattr(target, "__name__", "")
            if isinstance(owner, str):
                args = _check_str_method(owner, method, args, kwargs)
            # Looking an item up costs nothing much; searching a list compares every item.
            _spend_on(owner, deep=method in ("index", "count"))
            _spend_on(*args, *kwargs.values())
        return _built(super().call(context, obj, *args, **kwargs))


class _BoundedNamespace(Namespace):
    """Jinja's namespace, whose members are checked like any value the template builds."""

    def __setitem__(self, name: str, value: Any) -> None:
        if isinstance(value, Namespace):
            raise _NotAllowed("a namespace cannot be put inside a list, a dict or another namespace")
        super().__setitem__(name, _built(value))


def _bounded_range(*args: int) -> range:
    items = range(*args)
    if len(items) > MAX_LOOP_ITEMS:
        raise _Overspent(f"range() may produce at most {MAX_LOOP_ITEMS:,} items, not {len(items):,}")
    return items


def _metered(original: Any, *, deep: bool) -> Callable[..., Any]:
    """A filter or test that counts as a step and pays for what it goes through and builds.

    ``deep``: it looks inside its values (turns them into text, compares them), so it pays for all of them.
    """
    context_arguments = 1 if getattr(original, "jinja_pass_arg", None) is not None else 0

    @wraps(original)
    def metered(*args: Any, **kwargs: Any) -> Any:
        budget = _BUDGET.get()
        if budget is not None:
            budget.step()
            for value in args[context_arguments:]:
                budget.pay_for(value, deep=deep)
            for value in kwargs.values():
                budget.pay_for(value, deep=deep)
        return _built(original(*args, **kwargs))

    return metered


def _checked_filter(original: Callable[..., Any], check: Callable[..., None]) -> Callable[..., Any]:
    context_arguments = 1 if getattr(original, "jinja_pass_arg", None) is not None else 0

    @wraps(original)
    def checked(*args: Any, **kwargs: Any) -> Any:
        check(*args[context_arguments:], **kwargs)
        return original(*args, **kwargs)

    return checked


def _checked_join(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def checked(eval_ctx: Any, value: Any, d: Any = "", attribute: Any = None) -> Any:
        items = (
            list(value)
            if attribute is None
            else [*map(make_attrgetter(eval_ctx.environment, attribute), value)]
        )
        _check_join(d, items)
        return original(eval_ctx, items, d)

    return checked


# --- checks made before an operation, so it never starts building something too large -----------------


def _too_many_digits() -> _Overspent:
    return _Overspent(f"it would build a number of more than {MAX_INTEGER_DIGITS} digits")


def _too_long() -> _Overspent:
    return _Overspent(
        f"it would build a text longer than {MAX_BUILT_LENGTH:,} characters "
        f"or a list longer than {MAX_BUILT_LENGTH // ITEM_WEIGHT:,} items"
    )


def _weight(value: object) -> int:
    budget = _BUDGET.get()
    if budget is None:
        return len(value) if isinstance(value, str | bytes | list | tuple | dict) else 1
    return budget.weight(value, MAX_BUILT_LENGTH)


def _check_product(left: Any, right: Any) -> None:
    if type(left) is int and type(right) is int:
        # The product has at least this many bits.
        if left.bit_length() + right.bit_length() - 1 > _INTEGER_BITS:
            raise _too_many_digits()
        return
    for sequence, times in ((left, right), (right, left)):
        if isinstance(sequence, str | list | tuple) and isinstance(times, int):
            if times > 0 and max(_weight(sequence) - 1, len(sequence)) * times > MAX_BUILT_LENGTH:
                raise _too_long()


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(exponent, int) and abs(exponent) > MAX_EXPONENT:
        raise _Overspent(f"it raises a number to the power {exponent:,} (at most {MAX_EXPONENT:,})")
    if type(base) is int and type(exponent) is int and exponent > 0 and abs(base) > 1:
        at_least = (abs(base).bit_length() - 1) * exponent + 1  # bits of the power, at the fewest
        if at_least > _INTEGER_BITS:
            raise _too_many_digits()


def _check_sum_of(left: Any, right: Any) -> None:
    if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
        if _weight(left) + _weight(right) > MAX_BUILT_LENGTH:
            raise _too_long()


def _check_str_method(
    owner: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    if method in _REFUSED_STR_METHODS:
        raise _NotAllowed(f"the text method {method}() is not available")
    if method in _PADDING_STR_METHODS:
        _check_sizes(*args, *kwargs.values())
    elif method in ("format", "format_map"):
        _check_brace_format(owner)
    elif method == "replace" and len(args) >= 2:
        _check_replacement(owner, args[0], args[1])
    elif method == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        _check_sizes(size)
        if isinstance(size, int) and len(owner) + owner.count("\t") * size > MAX_BUILT_LENGTH:
            raise _too_long()
    elif method == "join" and args:
        items = list(args[0])
        _check_join(owner, items)
        return (items, *args[1:])
    return args


def _check_join(separator: Any, items: list[Any]) -> None:
    if not isinstance(separator, str):
        return
    parts = sum(_weight(item) for item in items)
    if parts + len(separator) * max(len(items) - 1, 0) > MAX_BUILT_LENGTH:
        raise _too_long()


def _check_replacement(text: Any, old: Any, new: Any, *args: Any, **kwargs: Any) -> None:
    # Replacing "" inserts ``new`` between every character, so chained replaces grow geometrically.
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return
    occurrences = len(text) + 1 if old == "" else text.count(old)
    if len(text) + occurrences * (len(new) - len(old)) > MAX_BUILT_LENGTH:
        raise _too_long()


def _check_sizes(*arguments: Any, **keywords: Any) -> None:
    for argument in (*arguments, *keywords.values()):
        if isinstance(argument, int) and abs(argument) > MAX_BUILT_LENGTH:
            raise _Overspent(f"it asks for a size of {argument:,} (at most {MAX_BUILT_LENGTH:,})")


def _check_sized_filter(value: Any, *args: Any, **kwargs: Any) -> None:
    _check_sizes(*args, **kwargs)


def _check_indent(text: Any, width: Any = 4, first: Any = False, blank: Any = False) -> None:
    _check_sizes(width)
    padding = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    if isinstance(text, str) and len(text) + (text.count("\n") + 1) * padding > MAX_BUILT_LENGTH:
        raise _too_long()


def _check_wordwrap(
    text: Any, width: Any = 79, break_long_words: Any = True, wrapstring: Any = None, *_: Any, **__: Any
) -> None:
    _check_sizes(width)
    if isinstance(text, str) and isinstance(width, int) and isinstance(wrapstring, str):
        lines = len(text) // max(width, 1) + text.count("\n") + 1
        if len(text) + lines * len(wrapstring) > MAX_BUILT_LENGTH:
            raise _too_long()


def _check_json_indent(value: Any, indent: Any = None) -> None:
    if isinstance(indent, int) and indent > _JSON_INDENT_LIMIT:
        raise _Overspent(f"tojson may indent by at most {_JSON_INDENT_LIMIT} spaces, not {indent:,}")
    if isinstance(indent, str) and len(indent) > _JSON_INDENT_LIMIT:
        raise _Overspent(f"tojson may indent by at most {_JSON_INDENT_LIMIT} characters")


def _check_number_sum(iterable: Any, attribute: Any = None, start: Any = 0) -> None:
    # Summing lists or texts copies them again for every item; sum is for numbers.
    if not isinstance(start, int | float | Decimal):
        raise _NotAllowed("sum adds numbers only")


def _check_format_filter(value: Any, *args: Any, **kwargs: Any) -> None:
    if isinstance(value, str):
        _check_percent_format(value)


def _check_percent_format(fmt: str) -> None:
    total = 0
    for match in _PERCENT_SPEC.finditer(fmt):
        total += _check_widths(match.groups())
    if total > MAX_BUILT_LENGTH:
        raise _too_long()


def _check_brace_format(fmt: str) -> None:
    total = 0
    try:
        fields = list(_FORMATTER.parse(fmt))
    except ValueError:
        return  # str.format reports the malformed format itself
    for _literal, _field, spec, _conversion in fields:
        if not spec:
            continue
        if "{" in spec:
            # A width taken from an argument ("{:{}}") could be anything; only written-out widths are allowed.
            raise _NotAllowed("a format width must be written out as a number, not taken from a value")
        total += _check_widths(tuple(re.findall(r"\d+", spec)))
    if total > MAX_BUILT_LENGTH:
        raise _too_long()


def _check_widths(widths: tuple[str | None, ...]) -> int:
    total = 0
    for width in widths:
        if width == "*":
            raise _NotAllowed("a format width must be written out as a number, not taken from a value")
        if width and (len(width) > len(str(MAX_FORMAT_WIDTH)) or int(width) > MAX_FORMAT_WIDTH):
            raise _Overspent(f"it asks for a format width of {width[:12]} (at most {MAX_FORMAT_WIDTH:,})")
        total += int(width) if width else 0
    return total


_FORMATTER = Formatter()

#: Filters that hand each item on without looking inside it; every other filter turns its values into text
#: or compares them, and pays for all of them.
_ITEM_BY_ITEM_FILTERS = frozenset(
    {
        "attr", "batch", "count", "d", "default", "first", "items", "last", "length", "list", "map",
        "random", "reject", "rejectattr", "reverse", "select", "selectattr", "slice", "sum",
    }
)  # fmt: skip
#: Tests that compare their values; the others look at a value's kind only.
_COMPARING_TESTS = frozenset(
    {"in", "eq", "equalto", "==", "ne", "!=", "lt", "<", "lessthan", "le", "<=", "gt", ">", "greaterthan", "ge", ">="}
)  # fmt: skip

_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    **dict.fromkeys(_SIZED_FILTERS, _check_sized_filter),
    "indent": _check_indent,
    "wordwrap": _check_wordwrap,
    "tojson": _check_json_indent,
    "sum": _check_number_sum,
    "format": _check_format_filter,
    "replace": _check_replacement,
}


# --- messages ---------------------------------------------------------------------------------------------


def _utf8_length(chunk: str) -> int:
    return len(chunk.encode("utf-8", "surrogatepass"))


def _syntax_message(exc: TemplateSyntaxError) -> str:
    return f"Template syntax error on line {exc.lineno}: {exc.message}"


def _unreadable_message(exc: BaseException) -> str:
    if isinstance(exc, ValueError):
        return "The template holds a number too long to read (more than 4,300 digits)."
    return "The template is nested too deeply to read (brackets or expressions inside each other)."


#: At most this many missing values are named in one refusal ("… and 12 more").
MISSING_NAMED = 8


@lru_cache(maxsize=256)
def _names_needed(source: str, escape: bool) -> tuple[str, ...]:
    """The variables a template reads and needs, in the order it first reads them, from one walk of its
    parsed form (cached: a campaign whose template fails asks once per recipient). A variable it only tests
    (`is defined`) or gives a default (`| default`, `| d`) may stay unset."""
    try:
        parsed = _sandbox(escape).parse(source)
    except Exception:  # it compiled once already; saying the first missing one is enough if this fails
        return ()
    undeclared = meta.find_undeclared_variables(parsed)
    optional = {
        test.node.name
        for test in parsed.find_all(nodes.Test)
        if test.name == "defined" and isinstance(test.node, nodes.Name)
    } | {
        used.node.name
        for used in parsed.find_all(nodes.Filter)
        if used.name in ("default", "d") and isinstance(used.node, nodes.Name)
    }
    ordered: dict[str, None] = {}
    for name in parsed.find_all(nodes.Name):
        if name.name in undeclared and name.name not in optional:
            ordered.setdefault(name.name, None)
    return tuple(ordered)


def _missing(source: str, escape: bool, given: Mapping[str, object]) -> list[str]:
    """Every variable the template needs that was not given: one failed render says them all, not one per
    try."""
    return [name for name in _names_needed(source, escape) if name not in given]


def _undefined_message(exc: UndefinedError, missing: Sequence[str] = ()) -> str:
    match = _UNDEFINED_NAME.match(exc.message or "")
    if match:
        names = list(missing) if match.group(1) in missing else [match.group(1)]
        if len(names) > 1:
            shown = [f"“{name[:40]}”" for name in names[:MISSING_NAMED]]
            if len(names) > MISSING_NAMED:
                shown.append(f"{len(names) - MISSING_NAMED:,} more")
            listed = ", ".join(shown[:-1]) + f" and {shown[-1]}"
            return f"No value was given for the variables {listed}."
        return f"No value was given for the variable “{match.group(1)}”."
    return f"The template refers to something that is missing: {exc.message}."


def _not_plain(name: str, value: object) -> TemplateError:
    return TemplateError(
        f"The value for '{name}' is a {type(value).__name__}; templates accept only text, numbers, "
        "dates, and lists or dicts of those."
    )
