"""Meta's register of approved WhatsApp message templates, as the sandbox keeps it: look-up and rendering."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

#: {{1}}, {{2}}, ... as Meta numbers a template's variables.
_VARIABLE = re.compile(r"\{\{\s*(\d+)\s*\}\}")
_NAMED = re.compile(r"\{\{\s*(\w+)\s*\}\}")
#: Meta refuses parameters with line breaks, tabs or more than four spaces in a row (132018).
_BAD_PARAMETER = re.compile(r"[\n\t]| {5,}")
CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")


@dataclass(frozen=True)
class ApprovedTemplate:
    """One template in one language as Meta approved it: a body with numbered variables."""

    name: str
    language: str
    category: str
    body: str

    @property
    def variable_count(self) -> int:
        return max((int(number) for number in _VARIABLE.findall(self.body)), default=0)

    def render(self, parameters: list[str]) -> str:
        """The text the customer's phone shows: each {{n}} replaced by the n-th body parameter."""
        return _VARIABLE.sub(lambda found: parameters[int(found.group(1)) - 1], self.body)

    def as_graph_json(self, template_id: str) -> dict[str, Any]:
        """The template as GET /{waba-id}/message_templates lists it."""
        return {
            "name": self.name,
            "language": self.language,
            "status": "APPROVED",
            "category": self.category,
            "id": template_id,
            "components": [{"type": "BODY", "text": self.body}],
        }


def template_problem(name: str, language: str, category: str, body: str) -> str | None:
    """Why Meta would not take a template submission, in its words; None when it would."""
    if not re.fullmatch(r"[a-z0-9_]{1,512}", name):
        return "Template names may contain only lowercase letters, numbers and underscores."
    if not re.fullmatch(r"[a-z]{2,3}(_[A-Z]{2})?", language):
        return f"The language {language or '(none)'} is not supported."
    if category not in CATEGORIES:
        return (
            f"The category {category or '(none)'} is not valid; choose MARKETING, UTILITY or AUTHENTICATION."
        )
    if not body.strip():
        return "A template needs a body."
    numbers = sorted({int(number) for number in _VARIABLE.findall(body)})
    if numbers != list(range(1, len(numbers) + 1)):
        return "Variables must be numbered in order from {{1}}, with none left out."
    return None


@dataclass(frozen=True)
class TemplateRefusal:
    """Why Meta refuses a template send: HTTP status, error code, title and details."""

    status: int
    code: int
    title: str
    details: str


def body_parameters(components: object) -> tuple[list[str], str | None]:
    """The body's parameters as the texts Meta puts in, or a reason a parameter cannot be used."""
    parameters: list[str] = []
    for component in components if isinstance(components, list) else []:
        if not isinstance(component, Mapping) or str(component.get("type", "")).lower() != "body":
            continue
        for parameter in component.get("parameters") or []:
            text = _parameter_text(parameter)
            if text is None or not text.strip() or _BAD_PARAMETER.search(text):
                return (
                    parameters,
                    "Param text cannot be empty or have new-line/tab characters or more than 4 consecutive spaces",
                )
            parameters.append(text)
    return parameters, None


def _parameter_text(parameter: object) -> str | None:
    if not isinstance(parameter, Mapping):
        return None
    kind = parameter.get("type")
    if kind == "text":
        return str(parameter.get("text", ""))
    if kind in ("currency", "date_time"):
        # The phone shows the fallback value when it cannot format the amount or date itself.
        value = parameter.get(kind)
        return str(value.get("fallback_value", "")) if isinstance(value, Mapping) else None
    return None


def render_template(
    registry: Mapping[tuple[str, str], ApprovedTemplate], template: Mapping[str, Any]
) -> str | TemplateRefusal:
    """The text a template send shows on the phone, or Meta's refusal of it."""
    name = str(template.get("name", ""))
    language = str((template.get("language") or {}).get("code", ""))
    approved = registry.get((name, language))
    if approved is None:
        return TemplateRefusal(
            404,
            132001,
            "Template name does not exist in the translation",
            f"template name ({name}) does not exist in {language}",
        )
    parameters, problem = body_parameters(template.get("components"))
    if problem is not None:
        return TemplateRefusal(
            400, 132018, "There was an issue with the parameters in your template.", problem
        )
    if len(parameters) != approved.variable_count:
        return TemplateRefusal(
            400,
            132000,
            "Number of parameters does not match the expected number of params",
            f"body: number of localizable_params ({len(parameters)}) does not match the expected "
            f"number of params ({approved.variable_count})",
        )
    return approved.render(parameters)


@cache
def northwind_templates() -> tuple[ApprovedTemplate, ...]:
    """The seeded demo business's WhatsApp templates, as they stand approved in its Meta account.

    Read from the seeding catalogue, so what the demo sends and what the sandbox accepts cannot drift
    apart; each named variable becomes {{n}} in the order Switchboard passes the parameters.
    """
    from storage.seeding.catalogue import template_rows

    rows, _ = template_rows(datetime(2024, 1, 1, tzinfo=UTC))
    approved = []
    for row in rows:
        if not row["whatsapp_name"]:
            continue
        category = "MARKETING" if row["category"] == "marketing" else "UTILITY"
        body = numbered(row["body"], row["whatsapp_params"])
        approved.append(ApprovedTemplate(row["whatsapp_name"], row["whatsapp_language"], category, body))
    return tuple(approved)


def numbered(body: str, parameter_names: list[str]) -> str:
    """`Hi {{ first_name }}` -> `Hi {{1}}`, numbering variables in the order their values are sent."""
    order = {name: index + 1 for index, name in enumerate(parameter_names)}
    return _NAMED.sub(lambda found: "{{" + str(order[found.group(1)]) + "}}", body)
