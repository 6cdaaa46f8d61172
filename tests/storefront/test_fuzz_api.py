"""schemathesis against the storefront's own OpenAPI document, with the real suite behind it: no 5xx.

Every operation gets generated requests, valid ones and invalid ones; whatever they hold,
the storefront must answer with a success or a client error, never a server error, and a
documented answer must match its schema. (schemathesis' pytest plugin does not run under
pytest 9, so each operation's strategy is driven by hypothesis here.)
"""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 6


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda mode: mode.value)
def test_no_generated_request_makes_the_storefront_fail(shop, mode):
    schema = schemathesis.openapi.from_url(shop.url + "openapi.json")
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    fitting_room = {"/v1/bodies/{body_id}/mesh", "/v1/bodies/{body_id}/mesh.glb", "/v1/bodies/{body_id}/try-on",
                    "/v1/bodies/{body_id}/try-on.png", "/v1/bodies/{body_id}/try-on.glb", "/v1/garments/{garment_id}/picture"}
    assert fitting_room <= {operation.path for operation in operations}
    with requests.Session() as session:
        for operation in operations:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def call(case):
                case.call_and_validate(session=session, checks=[not_a_server_error, response_schema_conformance])

            try:
                call()
            except Unsatisfiable:
                # No invalid request exists for an operation without parameters (/healthz, /metrics).
                assert mode is GenerationMode.NEGATIVE and not operation.path_parameters and not operation.query
            except Exception as error:  # noqa: BLE001 - every operation is tried, then all failures are shown
                failures[operation.label] = str(error)[:2000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
