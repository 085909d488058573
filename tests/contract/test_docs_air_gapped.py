"""/docs on a closed network: Swagger UI comes from the service itself and renders every
operation; Authorize takes a bearer token and a request tried from the page carries it."""

from __future__ import annotations

import pytest

from tests.browser import air_gapped_page


@pytest.mark.parametrize("docs", ["/docs", "/schema"])
async def test_the_docs_render_every_operation_with_no_host_but_the_service(demo_service, docs):
    base, _ = demo_service
    async with air_gapped_page(base) as gapped:
        page = gapped.page
        answer = await page.goto(f"{base}{docs}", wait_until="networkidle")
        assert answer is not None and answer.status == 200
        await page.wait_for_selector(".opblock-summary", timeout=30_000)
        rendered = await page.locator(".opblock-summary-path").all_inner_texts()
        assert "/api/v1/movements" in [p.replace("\u200b", "") for p in rendered]
        assert len(rendered) >= 60  # every operation of the document, not a blank page
        assert await page.locator(".info .title").inner_text() != ""
        assert gapped.blocked == []


async def test_authorize_takes_a_token_that_a_tried_request_carries(demo_service):
    base, headers = demo_service
    token = headers["Authorization"].removeprefix("Bearer ")
    async with air_gapped_page(base) as gapped:
        page = gapped.page
        await page.goto(f"{base}/docs", wait_until="networkidle")
        await page.locator("button.authorize").first.click()
        await page.locator(".modal-ux input[type=text], .modal-ux input[type=password]").first.fill(token)
        await page.locator(".modal-ux button.authorize").click()
        await page.locator(".modal-ux button.btn-done, .modal-ux .close-modal").first.click()

        levels = page.locator("#operations-readiness-ApiV1ReadinessLevels")  # GET /api/v1/readiness
        await levels.locator(".opblock-summary").first.click()
        await levels.locator("button.try-out__btn").click()
        async with page.expect_response(lambda r: r.url == f"{base}/api/v1/readiness") as answered:
            await levels.locator("button.execute").click()
        response = await answered.value
        assert response.status == 200
        assert (await response.request.all_headers())["authorization"] == f"Bearer {token}"
        shown = levels.locator(".live-responses-table")
        await shown.get_by_text("pending_confirmations").first.wait_for(timeout=30_000)
        assert gapped.blocked == []
