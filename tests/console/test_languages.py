"""English and Simplified Chinese: every message the console can show is in the zh-Hans catalogue,
and every page, rendered in Chinese for every role, shows no message without its translation."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from stockpile.console import i18n
from tests.console.browser import screenshot
from tests.console.conftest import sign_in

CONSOLE = Path(i18n.__file__).parent
PAGES = {
    "demo-operator": ["/console", "/console/warehouses/WH-N-04", "/console/warehouses/WH-S-02", "/console/readiness"],
    "demo-planner": ["/console", "/console/coverage", "/console/coverage?region=PRV-SOUTH", "/console/allocation",
                     "/console/drills", "/console/potential"],
    "demo-commander": ["/console", "/console/readiness", "/console/coverage"],
    "demo-auditor": ["/console", "/console/audit"],
    "demo-admin": ["/console/warehouses/WH-W-02", "/console/sensors/TEMP-W02-COLD", "/console/potential"],
}


def test_every_message_of_the_console_has_a_chinese_translation():
    extracted = {message for _, _, message, _, _ in extract_from_dir(
        str(CONSOLE), method_map=[("**.py", "python"), ("**/templates/**.html", "jinja2")],
        options_map={"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}})}
    with (i18n.TRANSLATIONS / "zh_Hans" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalogue = read_po(po)
    translated = {m.id for m in catalogue if m.id and m.string and not m.fuzzy
                  and all(m.string if isinstance(m.string, tuple) else [m.string])}
    assert len(extracted) > 200
    assert extracted - translated == set()


def test_the_language_is_chosen_by_the_query_then_the_cookie_then_accept_language():
    assert i18n.choose("zh", "en", "en-GB") == "zh"
    assert i18n.choose(None, "zh", "en") == "zh"
    assert i18n.choose(None, None, "fr;q=0.9, zh-CN;q=0.8, en;q=0.5") == "zh"
    assert i18n.choose(None, None, "en-US,zh;q=0.5") == "en"
    assert i18n.choose("xx", None, None) == "en"


def test_quantities_stay_exact_in_either_language():
    assert i18n.Speaker("zh").quantity("1234567.125", 3) == "1,234,567.125"
    assert i18n.Speaker("en").quantity("0.5", 3) == "0.500"


async def test_every_page_renders_in_chinese_without_a_missing_translation(watched, demo_service):
    for name, paths in PAGES.items():
        page = await (await watched(extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"})).page()
        await sign_in(page, demo_service.tokens[name])
        for path in paths:
            answer = await page.goto(path)
            assert answer.status == 200, (name, path)
            assert await page.get_attribute("html", "lang") == "zh-Hans"
            assert "退出" in await page.inner_text("header")
            await screenshot(page, f"zh-{name}-{path.strip('/').replace('/', '-').replace('?', '-')}")
    assert "untranslated console message" not in demo_service.log_path.read_text()
