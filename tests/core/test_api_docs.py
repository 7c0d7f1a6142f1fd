"""The API documents itself: OpenAPI at /api/v1/openapi.json, Swagger UI from our own static files."""
import re

import pytest

pytestmark = pytest.mark.django_db


def test_openapi_document_lists_the_contract_paths(client):
    doc = client.get("/api/v1/openapi.json").json()
    assert {"/api/v1/audit", "/api/v1/agents", "/api/v1/route", "/api/v1/events"} <= set(doc["paths"])


def test_docs_page_loads_nothing_from_other_sites(client):
    html = client.get("/api/v1/docs").content.decode()
    assert "swagger-ui-bundle.js" in html
    external = re.findall(r'(?:src|href)="(https?://[^"]+)"', html)
    assert external == []
    for path in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        assert client.get(path).status_code == 200, path


def test_docs_page_asks_no_online_validator(client):
    # Swagger UI's default fetches a validity badge from validator.swagger.io for any host but
    # localhost: the settings the page renders must switch it off.
    html = client.get("/api/v1/docs").content.decode()
    assert re.search(r'"validatorUrl":\s*null', html), "Swagger UI would fetch validator.swagger.io"


def _operations(doc):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def test_every_operation_documents_the_errors_it_can_answer(client):
    doc = client.get("/api/v1/openapi.json").json()
    assert "ErrorOut" in doc["components"]["schemas"]
    for name, operation in _operations(doc):
        responses = operation["responses"]
        expected = {"400", "401", "403", "503"}
        if operation.get("parameters") or "requestBody" in operation:
            expected.add("422")
        if "requestBody" in operation:
            expected.add("413")
        assert expected <= set(responses), f"{name} lacks {sorted(expected - set(responses))}"
        assert "500" not in responses, name
        assert "Retry-After" in responses["503"]["headers"], name
        assert responses["401"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorOut"}


def test_an_endpoint_keeps_its_own_statuses_and_their_descriptions(client):
    doc = client.get("/api/v1/openapi.json").json()
    approve = doc["paths"]["/api/v1/promotions/{promotion_id}/approve"]["post"]["responses"]
    assert {"200", "403", "404", "409"} <= set(approve)
    detail = doc["paths"]["/api/v1/agents/{slug}"]["get"]["responses"]
    assert {"200", "404"} <= set(detail)
    # A list has no path parameter to miss: no 404 is invented for it.
    assert "404" not in doc["paths"]["/api/v1/checklist"]["get"]["responses"]
    assert "422" not in doc["paths"]["/api/v1/checklist"]["get"]["responses"]
