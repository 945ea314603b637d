"""The console in a real browser: an auditor's search and timeline, a plan's live DAG, an
admin's erasure, and the refusals a browser sees."""

from __future__ import annotations

from playwright.async_api import BrowserContext, expect

from tests.support.clients import mcp_client, structured
from tests.support.console import base_of, browser_sign_in
from tests.support.embedded import RunningGateway
from tests.support.tokens import claims_for, forged, good_token, signed

LIVE_PLAN = {
    "plan_id": "nightly-report",
    "goal": "collect, then summarise",
    "tasks": [
        {"id": "collect", "tool_name": "sleep", "parameters": {"ms": 1500}},
        {"id": "crunch", "tool_name": "sleep", "parameters": {"ms": 1500}, "dependencies": ["collect"]},
        {"id": "report", "tool_name": "echo", "parameters": {"text": "done"}, "dependencies": ["crunch"]},
    ],
}


async def test_an_auditor_signs_in_filters_the_audit_log_and_opens_a_calls_timeline(
    secured: RunningGateway, browser: BrowserContext
) -> None:
    settings = secured.runtime.settings
    for subject, text in (("bob", "from bob"), ("carol", "from carol")):
        async with mcp_client(secured.url, token=good_token(settings, sub=subject, roles=())) as client:
            await client.call_tool("echo", {"text": text})
    page = await browser.new_page()
    base = base_of(secured.url)
    await browser_sign_in(page, base, good_token(settings, sub="audrey", roles=("auditor",)))
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    await page.get_by_role("link", name="Audit").click()
    await page.get_by_label("Subject", exact=True).fill("bob")
    await page.get_by_label("Tool").fill("echo")
    await page.get_by_label("Outcome").select_option("succeeded")
    await page.get_by_role("button", name="Filter").click()
    rows = page.locator("#events tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("bob")
    await expect(rows.first).to_contain_text("ToolSucceeded")
    await expect(page.locator("#events")).not_to_contain_text("carol")
    await rows.first.get_by_role("link", name="timeline").click()
    await expect(page.get_by_role("heading", name="Call timeline")).to_be_visible()
    await expect(page.locator("#outcome")).to_have_text("succeeded")
    timeline = page.locator(".timeline")
    await expect(timeline).to_contain_text("ToolCalled")
    await expect(timeline).to_contain_text("ToolSucceeded")
    await expect(page.locator("body")).not_to_contain_text("from bob")  # content stays sealed


async def test_a_plan_started_over_mcp_shows_its_tasks_finishing_on_its_dag_without_a_reload(
    secured: RunningGateway, browser: BrowserContext
) -> None:
    settings = secured.runtime.settings
    token = good_token(settings, sub="pat", roles=("admin",))
    async with mcp_client(secured.url, token=token) as client:
        created = structured(await client.call_tool("create_plan", {"plan": LIVE_PLAN, "execute": True}))
    assert created["status"] == "running"
    page = await browser.new_page()
    base = base_of(secured.url)
    await browser_sign_in(page, base, token)
    await page.get_by_role("link", name="Plans").click()
    await page.get_by_role("link", name="nightly-report").click()
    await page.evaluate("window.consoleTestMarker = 'same page'")
    report = page.locator("#task-2")
    assert await report.get_attribute("data-state") != "succeeded"
    await expect(report).to_have_attribute("data-state", "succeeded", timeout=20_000)
    await expect(page.locator("#task-0")).to_have_attribute("data-state", "succeeded")
    await expect(page.locator("#plan-status")).to_have_text("succeeded")
    await expect(page.locator("#row-task-1 .status")).to_have_text("succeeded")
    assert await page.evaluate("window.consoleTestMarker") == "same page"  # no reload happened
    await page.reload()
    await expect(page.locator("details", has_text="report")).to_contain_text("done")  # the owner's output


async def test_an_admin_erases_a_subject_and_sees_it_complete_and_their_data_gone(
    secured: RunningGateway, browser: BrowserContext
) -> None:
    settings = secured.runtime.settings
    async with mcp_client(secured.url, token=good_token(settings, sub="erin", roles=())) as client:
        await client.call_tool("note_set", {"key": "diagnosis", "value": "private"})
    page = await browser.new_page()
    base = base_of(secured.url)
    await browser_sign_in(page, base, good_token(settings, sub="ada", roles=("admin",)))
    await page.goto(f"{base}/console/privacy")
    await page.get_by_label("Subject", exact=True).fill("erin")
    await page.get_by_role("button", name="Find").click()
    await expect(page.locator("#session-count")).to_have_text("1")
    await page.get_by_role("button", name="Erase this subject…").click()
    destroyed = page.locator("#destroyed")
    await expect(destroyed).to_contain_text("1 session")
    await expect(destroyed).to_contain_text("data keys")
    await page.get_by_label("Type the subject id to confirm").fill("erin")
    await page.get_by_role("button", name="Erase erin").click()
    await expect(page.locator("#erasure-status")).to_contain_text("Completed")
    await page.locator("#subject-link").click()
    await expect(page.locator("#session-count")).to_have_text("0")
    await expect(page.locator("#erasure-count")).to_have_text("1")
    await page.goto(f"{base}/console/subjects?subject=erin")
    await expect(page.locator("main")).to_contain_text("No sessions of this subject")


async def test_an_analyst_is_refused_every_page(secured: RunningGateway, browser: BrowserContext) -> None:
    settings = secured.runtime.settings
    page = await browser.new_page()
    base = base_of(secured.url)
    await browser_sign_in(page, base, good_token(settings, sub="ann", roles=("data-analyst",)))
    for path in ("/console/", "/console/audit", "/console/plans", "/console/privacy"):
        response = await page.goto(base + path)
        assert response is not None
        assert response.status == 403
        await expect(page.get_by_role("alert")).to_contain_text("needs the auditor or admin role")


async def test_a_forged_or_expired_token_is_refused_at_sign_in(
    secured: RunningGateway, browser: BrowserContext
) -> None:
    settings = secured.runtime.settings
    expired = signed(settings, claims_for(settings, roles=["auditor"], iat=1, exp=2))
    page = await browser.new_page()
    base = base_of(secured.url)
    for token in (forged(settings), expired):
        await browser_sign_in(page, base, token)
        await expect(page.get_by_role("alert")).to_contain_text("The token was refused")
        assert [c for c in await browser.cookies() if c["name"] == "ledger_console"] == []
        response = await page.goto(f"{base}/console/audit")
        assert response is not None
        assert page.url.endswith("/console/sign-in")


async def test_a_post_without_its_csrf_token_is_refused_even_from_the_consoles_own_page(
    secured: RunningGateway, browser: BrowserContext
) -> None:
    settings = secured.runtime.settings
    async with mcp_client(secured.url, token=good_token(settings, sub="victim", roles=())) as client:
        await client.call_tool("echo", {"text": "still here"})
    page = await browser.new_page()
    base = base_of(secured.url)
    await browser_sign_in(page, base, good_token(settings, sub="ada", roles=("admin",)))
    status = await page.evaluate(
        """async () => {
            const body = new URLSearchParams({subject: "victim", confirm: "victim"});
            const answer = await fetch("/console/privacy/erase", {method: "POST", body});
            return answer.status;
        }"""
    )
    assert status == 403
    await page.goto(f"{base}/console/privacy?subject=victim")
    await expect(page.locator("#erasure-count")).to_have_text("0")


async def test_every_page_can_be_used_by_keyboard_with_labelled_controls(
    secured: RunningGateway, browser: BrowserContext
) -> None:
    settings = secured.runtime.settings
    page = await browser.new_page()
    base = base_of(secured.url)
    await browser_sign_in(page, base, good_token(settings, sub="ada", roles=("admin",)))
    for path in ("/console/", "/console/audit", "/console/plans", "/console/subjects?subject=x",
                 "/console/registry", "/console/privacy?subject=x"):  # fmt: skip
        await page.goto(base + path)
        unlabelled = await page.evaluate(
            """() => [...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
                .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label"))
                .map((el) => el.name)"""
        )
        assert unlabelled == [], path
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
        await page.keyboard.press("Enter")
        assert await page.evaluate("document.activeElement.id") == "main"
