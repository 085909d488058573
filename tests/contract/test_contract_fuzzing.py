"""Every operation of the served OpenAPI document, fuzzed on the demo reserve: whatever a client
sends that the document allows or not, the answer is one the document promises — its status
code, content type, headers and body schema — and never a server error.

Each operation gets ``EXAMPLES`` generated requests from a fixed seed (schemathesis' pytest
integration); any failure fails the test with the request that reproduces it.
"""

from __future__ import annotations

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

SEED = 20261203
EXAMPLES = 50
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@pytest.fixture(scope="package")
def served_contract(demo_service):
    base, _ = demo_service
    document = httpx.get(f"{base}/schema/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=base)
    return schema


contract = schemathesis.pytest.from_fixture("served_contract")


@contract.parametrize()
@hypothesis.seed(SEED)
@hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
                     suppress_health_check=list(HealthCheck))
def test_every_answer_keeps_to_the_document(case, demo_service):
    _, headers = demo_service
    case.call_and_validate(headers=headers, checks=CHECKS)
