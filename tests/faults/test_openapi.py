"""Schemathesis against /api/schema/openapi.json of the served app: the API does what its document says.

Every documented operation gets generated requests, valid ones and ones that break the schema, on each
engine. Not one may answer a server error, a status the document does not list, another content type, or
a body that does not match the documented shape. The example count is bounded so the whole run stays
under a minute on a small machine; the examples are derandomised so a failure reproduces.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from pydantic import SecretStr
from schemathesis.checks import CheckFunction

from api.app import create_app
from storage.database import Database
from storage.seeding import SeedPlan, seed_database
from switchboard.settings import Settings

TOKEN = "schema-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Examples per operation and generation mode (about 30 operations × 2 modes per engine); set
#: SWITCHBOARD_SCHEMA_EXAMPLES=200 for a deeper run by hand.
EXAMPLES = int(os.environ.get("SWITCHBOARD_SCHEMA_EXAMPLES", "12"))
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
CHECKS: list[CheckFunction] = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.negative_data_rejection,
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def served_api(database_url: str) -> Iterator[str]:
    """The app served by uvicorn in a thread of this process, on a small seeded database."""

    async def seed() -> None:
        database = Database.connect(database_url)
        try:
            await seed_database(
                database, SeedPlan(customers=30, days=20, seed=1, end_date=date(2026, 11, 20))
            )
        finally:
            await database.dispose()

    asyncio.run(seed())
    app_settings = Settings(
        database_url=database_url, api_token=SecretStr(TOKEN), environment="test", worker_in_process=False
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(app_settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the app did not start within 20 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=20)


def run_operation(operation: Any, base_url: str, mode: schemathesis.GenerationMode) -> list[str]:
    """Generated requests for one operation; the failures each found, in words (empty: none)."""
    found: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def exercise(case: Any) -> None:
        try:
            case.call_and_validate(base_url=base_url, headers=AUTH, checks=CHECKS, timeout=30)
        # One failed check is an AssertionError, several come as a group of them.
        except (AssertionError, BaseExceptionGroup) as failure:
            found.append(f"{operation.label} ({mode.value}): {failure}".strip()[:1500])

    try:
        exercise()
    except Unsatisfiable:  # nothing to break: an operation without parameters has no negative examples
        assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
    return found


def test_the_api_does_what_its_openapi_document_says(served_api: str) -> None:
    schema = schemathesis.openapi.from_url(f"{served_api}/api/schema/openapi.json")
    # We send the bearer token ourselves; unknown query parameters are ignored, as HTTP APIs do.
    schema.config.generation.update(allow_extra_parameters=False, with_security_parameters=False)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 25, "the document should list the JSON API, webhooks and health checks"
    failures = [
        failure
        for operation in operations
        for mode in MODES
        for failure in run_operation(operation, served_api, mode)
    ]
    distinct = sorted(set(failures))
    summary = f"{len(operations)} operations, {len(failures)} failing examples, {len(distinct)} distinct"
    assert not failures, summary + ":\n\n" + "\n\n".join(distinct[:12])
