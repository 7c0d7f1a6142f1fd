"""The Content-Security-Policy: every page is sent with it, and no template holds what it forbids (an
inline script, a style attribute or element, an event handler). The browser tests load every page
under it and fail on any violation (tests/browser/test_pages.py)."""
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted(p for p in ROOT.glob("**/templates/**/*.html") if ".venv" not in p.parts)


def test_pages_are_sent_with_a_strict_policy(client, operator):
    client.force_login(operator)
    policy = client.get("/").headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["default-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy and "http" not in policy


@pytest.mark.parametrize("path", TEMPLATES, ids=[str(p.relative_to(ROOT)) for p in TEMPLATES])
def test_no_template_holds_inline_script_or_style(path):
    html = re.sub(r"\{#.*?#\}", "", path.read_text())  # comments may name what they avoid
    # <script> only with src, or a json_script-style data block.
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert not re.search(r"<style\b", html)
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    assert "hx-on" not in html and "js:" not in html
    assert "[document." not in html, "htmx trigger filters are evaluated code"
