"""Schemathesis against the OpenAPI document: no 500s, every error in the one shape.

Each operation gets valid (positive) and invalid (negative) generated requests. The
schemathesis pytest plugin does not run under this pytest, so Hypothesis drives the
strategies schemathesis builds from the document directly.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from service_support import API_KEY, assert_error  # noqa: E402

pytestmark = pytest.mark.timeout(900)

EXAMPLES = 20
"""Per operation and mode: 9 operations x 2 modes x 20 keeps the run near a minute."""


@pytest.fixture(scope="module")
def api_schema(shared_server):
    return schemathesis.openapi.from_url(f"{shared_server.url}/openapi.json")


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_api_never_fails_and_errors_keep_their_shape(api_schema, mode: str) -> None:
    checks = [
        schemathesis.checks.not_a_server_error,
        schemathesis.checks.status_code_conformance,
        schemathesis.checks.content_type_conformance,
        schemathesis.checks.response_schema_conformance,
    ]
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 9
    seen: set[int] = set()
    skipped: list[str] = []
    for operation in operations:
        if operation.method.upper() == "POST" and operation.path == "/refit":
            continue  # admin-only and slow; covered by its own tests

        @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode)))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def run(case) -> None:
            response = case.call(headers={"X-API-Key": API_KEY}, timeout=30)
            seen.add(response.status_code)
            assert response.status_code < 500, f"{case.method} {case.path}: {response.text}"
            if response.status_code >= 400:
                assert_error(response, response.status_code)
            case.validate_response(response, checks=checks)

        try:
            run()
        except Unsatisfiable:
            # nothing to vary (no parameters, or no way to make them invalid)
            skipped.append(f"{operation.method.upper()} {operation.path}")
    assert seen, skipped
    print(
        f"{mode}: statuses {sorted(seen)}; nothing to generate for {skipped}"
    )  # something was sent
