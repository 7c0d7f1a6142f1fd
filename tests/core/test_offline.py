"""The app works offline: nothing a page loads names a remote server (docs/pages.md, "What the
browser loads"). plotly.js's config defaults pointed at Plotly's CDN (geo topojson) and its cloud;
scripts/vendor/build.js replaces them, and these tests hold the committed files to the same rule."""
import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]
# The hosts an absolute URL in a served file may name (scripts/vendor/build.js, TEXT_HOSTS): XML
# namespace names and the documentation links of error messages, text a browser never requests.
# Any other host — a CDN, Plotly's servers — is one a library could fetch from.
TEXT_HOSTS = {"www.w3.org", "plotly.com", "developer.mozilla.org", "github.com"}
URL = re.compile(r"(?:https?:)?//([a-z0-9-]+(?:\.[a-z0-9-]+)+)", re.IGNORECASE)
SERVED = sorted(p for p in (ROOT / "static").rglob("*") if p.is_file() and p.suffix in {".js", ".css", ".html", ".svg"})


def test_there_are_static_files_to_check():
    assert any(p.name == "plotly-partial.min.js" for p in SERVED)


@pytest.mark.parametrize("path", SERVED, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_static_file_names_a_remote_host(path):
    hosts = {host.lower() for host in URL.findall(path.read_text(encoding="utf-8", errors="replace"))}
    assert hosts <= TEXT_HOSTS, f"{path.relative_to(ROOT)} names {sorted(hosts - TEXT_HOSTS)}"


def test_a_file_naming_a_cdn_would_be_caught():
    # The rule above is an allowlist: a host it does not know, however it is written, fails it.
    text = '<script src="//cdn.example.net/lib.js"></script> see https://plotly.com/javascript/'
    assert {host.lower() for host in URL.findall(text)} - TEXT_HOSTS == {"cdn.example.net"}


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


def _served_by_django():
    """Every file /static/ can answer with: the project's static/ and the installed apps' own."""
    for finder in finders.get_finders():
        for path, storage in finder.list(["CVS", ".*", "*~"]):
            yield path, Path(storage.path(path))


def test_only_static_and_the_installed_apps_files_are_served():
    # What the virtualenv holds besides the installed apps' static files — the Jupyter extension
    # the plotly package ships, example pages inside libraries (werkzeug, rich) — is never served.
    served = dict(_served_by_django())
    assert "vendor/plotly/plotly-partial.min.js" in served
    for path, full in served.items():
        assert "labextensions" not in full.parts and full.suffix != ".py", path
        assert full.is_relative_to(ROOT / "static") or "static" in full.parts, path
    for name in ("0.03957c7088ad5ed0.js", "testapp.py", "_export_format.py"):
        assert not any(Path(path).name == name for path in served), name


def test_ninjas_redoc_bundle_is_neither_served_nor_collected(tmp_path, settings):
    # django-ninja ships Redoc, whose bundle names Redocly's CDN; the API docs are Swagger UI, and
    # the finder leaves Redoc out (rolloutops/staticfiles.py). Swagger UI itself is still served.
    for name in ("ninja/redoc.standalone.js", "ninja/redoc.standalone.js.map"):
        assert finders.find(name) is None, name
        assert finders.find(name, find_all=True) == [], name
    assert finders.find("ninja/swagger-ui-bundle.js") is not None
    assert not any("redoc" in path for path, _ in _served_by_django())
    settings.STATIC_ROOT = tmp_path
    call_command("collectstatic", interactive=False, verbosity=0)
    collected = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert "ninja/swagger-ui-bundle.js" in collected and "vendor/plotly/plotly-partial.min.js" in collected
    assert not [path for path in collected if "redoc" in path]


def test_the_api_docs_page_loads_only_what_is_served(client):
    page = client.get("/api/v1/docs").content.decode()
    scripts = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page)
    assert scripts, page[:500]
    for url in scripts:
        assert url.startswith("/static/"), url
        assert finders.find(url.removeprefix("/static/")) is not None, url
