"""Take the console's screenshots for docs/screenshots/ (PNG), from a gateway with real data.

    uv run python scripts/console_screenshots.py [--out docs/screenshots]

Starts the embedded gateway (authentication on, a temporary data directory), records some
calls, a denial, a registered tool and a running plan over MCP with the official client
(a zero-day retention makes the retention dry run list everyone), signs in to the console in
Debian's Chromium (/usr/bin/chromium) as an admin and photographs every page. Nothing leaves
the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.clients import mcp_client  # noqa: E402
from tests.support.console import base_of, browser_sign_in, chromium  # noqa: E402
from tests.support.embedded import embedded_settings, gateway  # noqa: E402
from tests.support.tokens import good_token  # noqa: E402

PLAN = {
    "plan_id": "weekly-digest",
    "goal": "gather sources, summarise, publish",
    "tasks": [
        {"id": "fetch-news", "tool_name": "echo", "parameters": {"text": "news"}},
        {"id": "fetch-metrics", "tool_name": "echo", "parameters": {"text": "metrics"}},
        {
            "id": "summarise",
            "tool_name": "sleep",
            "parameters": {"ms": 20000},
            "dependencies": ["fetch-news", "fetch-metrics"],
        },
        {
            "id": "publish",
            "tool_name": "echo",
            "parameters": {"text": "posted"},
            "dependencies": ["summarise"],
        },
    ],
}
TOOL = {
    "name": "pet_by_id",
    "description": "One pet from the pet service.",
    "input_schema": {"type": "object", "properties": {"petId": {"type": "integer"}}, "required": ["petId"]},
    "binding": {
        "kind": "http",
        "method": "GET",
        "base_url": "https://pets.example",
        "path": "/pets/{petId}",
        "parameters": {"petId": "path"},
        "timeout_s": 5,
    },
}


async def _record(url: str, settings: object) -> None:
    admin = good_token(settings, sub="ada", roles=("admin",))  # type: ignore[arg-type]
    for subject in ("bob", "carol", "erin"):
        async with mcp_client(url, token=good_token(settings, sub=subject, roles=())) as client:  # type: ignore[arg-type]
            await client.call_tool("echo", {"text": f"hello from {subject}"})
            await client.call_tool("note_set", {"key": "favourite", "value": "tea"})
            await client.call_tool("state_seal", {"state": {"x": 1}})  # denied: needs a role
    async with mcp_client(url, token=admin) as client:
        await client.call_tool("register_tools", {"tools": [TOOL]})
        await client.call_tool("create_plan", {"plan": PLAN, "execute": True})


async def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as data:
        settings = embedded_settings(Path(data), no_auth=False).model_copy(
            update={"registry_allowed_hosts": "pets.example", "subject_retention_days": {"*": 0}}
        )
        async with gateway(settings) as running:
            await _record(running.url, settings)
            base = base_of(running.url)
            async with chromium(Path(data) / "profile") as browser:
                page = await browser.new_page()
                await page.set_viewport_size({"width": 1280, "height": 860})
                await page.goto(f"{base}/console/sign-in")
                await page.screenshot(path=out / "sign-in.png")
                await browser_sign_in(page, base, good_token(settings, sub="ada", roles=("admin",)))
                shots = {
                    "overview": "/console/",
                    "audit": "/console/audit?subject=bob",
                    "verify": "/console/audit/verify",
                    "plans": "/console/plans",
                    "subjects": "/console/subjects?subject=bob",
                    "registry": "/console/registry",
                    "privacy": "/console/privacy?subject=erin",
                }
                for name, path in shots.items():
                    await page.goto(base + path)
                    await page.screenshot(path=out / f"{name}.png", full_page=True)
                await page.goto(f"{base}/console/audit?subject=bob&tool=echo")
                await page.locator("#events a", has_text="timeline").first.click()
                await page.screenshot(path=out / "timeline.png", full_page=True)
                await page.goto(f"{base}/console/plans")
                await page.get_by_role("link", name="weekly-digest").click()
                await page.locator("#task-2[data-state=running]").wait_for(timeout=15_000)
                await page.screenshot(path=out / "plan.png", full_page=True)
                await page.goto(f"{base}/console/privacy?subject=erin")
                await page.get_by_role("button", name="Erase this subject…").click()
                await page.screenshot(path=out / "erase-confirm.png", full_page=True)
    print(f"screenshots written to {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    target = parser.parse_args().out
    target.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(target))
