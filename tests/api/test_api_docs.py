"""/docs works offline: Swagger UI's files come from the service, under the pages' CSP."""

from __future__ import annotations

import re

import pytest
from httpx import AsyncClient

pytestmark = pytest.mark.anyio


async def test_docs_page_loads_only_local_assets_under_the_pages_policy(
    client: AsyncClient,
) -> None:
    page = await client.get("/docs")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'self'" in csp
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    scripts = re.findall(r"<script([^>]*)>", page.text)
    assert all("src=" in attributes for attributes in scripts), "no inline script"
    assert "/static/swagger-ui-bundle.js" in assets and "/static/swagger-ui.css" in assets
    for asset in assets:
        if asset.startswith("data:"):
            continue
        assert asset.startswith("/"), f"{asset} is not served by the service"
        if asset.startswith("/static/"):
            response = await client.get(asset)
            assert response.status_code == 200, asset


async def test_docs_page_points_swagger_ui_at_the_services_own_schema(client: AsyncClient) -> None:
    page = await client.get("/docs")
    schema = await client.get("/openapi.json")

    assert 'data-openapi-url="/openapi.json"' in page.text
    assert schema.status_code == 200
    assert "/v1/validations" in schema.json()["paths"]


async def test_every_pages_api_link_leads_to_the_docs_page(client: AsyncClient) -> None:
    history = await client.get("/reports")
    missing = await client.get("/reports/no-such-report")

    for page in (history, missing):
        assert '<a href="/docs">API</a>' in page.text
    assert (await client.get("/docs")).status_code == 200
