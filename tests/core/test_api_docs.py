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
