"""Schema fuzzing: schemathesis generates requests from the app's own OpenAPI spec; none may get a 5xx.

The default checks also hold every answer to the spec: documented status codes, content types and
response schemas. A small stand-in recognizer keeps it fast; examples are derandomized (repeatable).
"""

from __future__ import annotations

import pytest

pytest.importorskip("schemathesis", reason="schemathesis is a test extra: pip install -e '.[test]'")

import schemathesis  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

from mien.serve import ServeSettings, create_app  # noqa: E402
from test_serve_api import FakeRecognizer  # noqa: E402

app = create_app(recognizer=FakeRecognizer(), model="fake", settings=ServeSettings(max_batch_files=4))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_request_the_spec_allows_gets_a_server_error(case: schemathesis.Case) -> None:
    response = case.call()
    assert response.status_code < 500, f"{case.method} {case.path} -> {response.status_code}: {response.text[:300]}"
    # positive_data_acceptance is left out: the spec can only say "binary", and bytes that are not an
    # image are refused (415/400) by design; every other default check applies.
    case.validate_response(response, excluded_checks=[schemathesis.checks.positive_data_acceptance])


def test_the_fuzzer_covers_every_route() -> None:
    operations = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert operations == {("POST", "/v1/predict"), ("POST", "/v1/predict/batch"), ("GET", "/v1/models"),
                          ("GET", "/healthz")}
