"""The app works offline: nothing a page loads names a remote server (docs/pages.md, "What the
browser loads"). plotly.js's config defaults pointed at cdn.plot.ly (geo topojson) and Plotly's cloud;
scripts/vendor/build.js replaces them, and these tests hold the committed files to it."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Hosts a browser library could fetch from (CDNs, Plotly's servers); documentation links in error
# messages (plotly.com/javascript/…, developer.mozilla.org) are text, never requested.
REMOTE = re.compile(r"cdn\.plot\.ly|cloud\.plotly\.com|chart-studio\.plotly\.com|cdn\.jsdelivr|unpkg\.com|cdnjs\."
                    r"|fonts\.googleapis|ajax\.googleapis|code\.jquery")
SERVED = sorted(p for p in (ROOT / "static").rglob("*") if p.is_file() and p.suffix in {".js", ".css", ".html", ".svg"})


def test_there_are_static_files_to_check():
    assert any(p.name == "plotly-partial.min.js" for p in SERVED)


@pytest.mark.parametrize("path", SERVED, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_static_file_names_a_remote_host(path):
    found = REMOTE.search(path.read_text(encoding="utf-8", errors="replace"))
    assert found is None, f"{path.relative_to(ROOT)} names {found.group(0)}"


def test_plotly_defaults_point_nowhere_remote():
    bundle = (ROOT / "static" / "vendor" / "plotly" / "plotly-partial.min.js").read_text(encoding="utf-8")
    assert 'topojsonURL:{valType:"string",noBlank:!0,dflt:"/static/vendor/plotly/topojson/"' in bundle
    assert 'plotlyServerURL:{valType:"string",dflt:""' in bundle


def test_no_template_loads_a_script_style_or_font_from_elsewhere():
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert not re.search(r'(src|href)="(https?:)?//', text), template
    for template in ROOT.glob("*/templates/**/*.html"):
        text = template.read_text(encoding="utf-8")
        assert not re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', text), template
