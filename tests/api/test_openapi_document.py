"""The served OpenAPI document is a contract clients can be generated from: every operation says
what it answers (a typed success body, each problem it can give as problem+json), what it takes
(paging bounds, the cursor's format, enums, the rule version's range) and how to authenticate;
nothing it advertises is an answer the service never sends. The docs need no host but the service."""

from __future__ import annotations

import re

import msgspec
import pytest

from stockpile.api.openapi import CSV_EXPORTS
from stockpile.api.schemas.sensors import ReadingsAnswer

METHODS = ("get", "put", "post", "delete", "patch")
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
async def document(client) -> dict:
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    return r.json()


def operations(document: dict):
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


async def test_no_operation_advertises_a_body_the_service_never_sends(document):
    for path, method, operation in operations(document):
        assert "400" not in operation["responses"], (method, path)
        for status, answer in operation["responses"].items():
            for media, content in answer.get("content", {}).items():
                assert "status_code" not in str(content.get("schema")), (method, path, status)


async def test_every_operation_documents_a_typed_success_body(document):
    for path, method, operation in operations(document):
        [success] = [s for s in operation["responses"] if s.startswith("2") and s != "201"] or ["201"]
        schema = operation["responses"][success]["content"]["application/json"]["schema"]
        assert "$ref" in schema, (method, path, schema)


async def test_every_problem_answer_is_problem_json_with_its_stable_types(document):
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["required"])
    for path, method, operation in operations(document):
        for status, answer in operation["responses"].items():
            if int(status) >= 400:
                assert list(answer["content"]) == [PROBLEM], (method, path, status)
                assert answer["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
    conflict = document["paths"]["/api/v1/movements"]["post"]["responses"]["409"]
    assert "`insufficient-stock`" in conflict["description"] and "`idempotency-conflict`" in conflict["description"]


async def test_every_api_operation_needs_the_bearer_token_and_says_it_can_answer_401_and_429(document):
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": document["components"]["securitySchemes"]["bearer"]["description"]}
    for path, method, operation in operations(document):
        if path.startswith("/api/v1"):
            assert operation["security"] == [{"bearer": []}], (method, path)
            assert {"401", "429"} <= set(operation["responses"]), (method, path)
        else:
            assert "security" not in operation and "401" not in operation["responses"], (method, path)


async def test_operations_that_read_or_change_by_id_document_404_and_writes_that_can_be_refused_409(document):
    for path, method, operation in operations(document):
        if "{" in path and method != "put":  # an upsert by code creates what it does not find
            assert "404" in operation["responses"], (method, path)
        if operation.get("parameters") or operation.get("requestBody"):
            assert "422" in operation["responses"], (method, path)
    assert "409" in document["paths"]["/api/v1/movements"]["post"]["responses"]


async def test_paging_parameters_declare_their_bounds_and_format(document):
    lists = [(path, operation) for path, method, operation in operations(document)
             if method == "get" and any(p["name"] == "cursor" for p in operation.get("parameters", []))]
    assert len(lists) >= 15
    for path, operation in lists:
        params = {p["name"]: p["schema"] for p in operation["parameters"]}
        assert (params["limit"]["minimum"], params["limit"]["maximum"]) == (1, 1000), path
        assert params["cursor"]["pattern"] == "^[A-Za-z0-9_-]+$", path
    version = {p["name"]: p["schema"] for p in document["paths"]["/api/v1/allocation-rules"]["get"]["parameters"]}["version"]
    assert version["minimum"] == 1
    kinds = {p["name"]: p["schema"] for p in document["paths"]["/api/v1/movements"]["get"]["parameters"]}["kind"]
    assert "reversal" in str(kinds)


async def test_paging_bounds_are_kept_as_declared(client, auditor):
    for limit in (0, 1001):
        r = await client.get("/api/v1/stock", params={"limit": limit}, headers=auditor)
        assert r.status_code == 422 and r.json()["type"] == "validation"
        assert [e["field"] for e in r.json()["errors"]] == ["limit"]
    assert (await client.get("/api/v1/stock", params={"limit": 1000}, headers=auditor)).status_code == 200


async def test_upserts_document_both_created_and_replaced(document):
    for code in ("parties", "regions", "warehouses", "materials", "reserve-targets", "rotation-policies",
                 "allocation-rules"):
        answers = document["paths"][f"/api/v1/{code}/{{code}}"]["put"]["responses"]
        assert answers["200"]["content"]["application/json"]["schema"] == answers["201"]["content"]["application/json"]["schema"]


async def test_lists_say_they_also_answer_csv(document):
    for path in CSV_EXPORTS:
        if path in document["paths"]:
            assert "text/csv" in document["paths"][path]["get"]["responses"]["200"]["content"], path
    assert "text/csv" in document["paths"]["/api/v1/stock"]["get"]["responses"]["200"]["content"]


async def test_the_main_operations_carry_an_example_request_and_answer(document):
    movement = document["paths"]["/api/v1/movements"]["post"]
    assert {"receipt", "issue (first-expiring-first)"} <= set(movement["requestBody"]["content"]["application/json"]["examples"])
    answer = movement["responses"]["201"]["content"]["application/json"]["examples"]["issue"]["value"]
    assert answer["postings"][0]["delta"] == "-500.0"
    assert document["paths"]["/api/v1/stock"]["get"]["responses"]["200"]["content"]["application/json"]["examples"]
    readings = document["paths"]["/api/v1/sensor-readings"]["post"]
    assert readings["requestBody"]["content"]["application/json"]["examples"]["one good, one refused"]
    taken = readings["responses"]["200"]["content"]["application/json"]["examples"]["one good, one refused"]["value"]
    refused = msgspec.convert(taken, ReadingsAnswer).refused
    assert [(r.index, r.status, r.problem.type) for r in refused] == [(1, 422, "validation")]


async def test_a_method_a_route_does_not_take_is_405_with_allow(client, auditor):
    r = await client.delete("/api/v1/stock", headers=auditor)
    assert r.status_code == 405 and r.headers["content-type"].startswith(PROBLEM)
    assert set(r.headers["allow"].replace(" ", "").split(",")) == {"GET", "OPTIONS"}


async def test_options_on_an_api_route_needs_a_token_like_any_method(client, admin):
    for path in ("/api/v1/tokens", "/api/v1/stock"):
        refused = await client.options(path)
        assert refused.status_code == 401 and refused.json()["type"] == "unauthenticated"
        assert (await client.options(path, headers=admin)).status_code == 204


async def test_the_docs_load_their_assets_from_the_service_with_their_licence(client):
    for page in ("/docs", "/schema", "/schema/swagger"):
        html = (await client.get(page)).text
        assert not re.search(r"""(src|href)=['"]https?://""", html), page
        assert "/docs/assets/swagger-ui-bundle.js" in html
    for asset, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "css"),
                        ("swagger-ui-standalone-preset.js", "javascript")):
        r = await client.get(f"/docs/assets/{asset}")
        assert r.status_code == 200 and kind in r.headers["content-type"] and len(r.content) > 10_000
    licence = await client.get("/docs/assets/LICENSE")
    assert licence.status_code == 200 and "Apache License" in licence.text
