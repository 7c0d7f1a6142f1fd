"""What a rollout page costs on a cold cache: its HTML and every static file it loads, compressed as
WhiteNoise serves them (gzip, from collectstatic; tests/core/test_demo.py checks the serving)."""
import gzip
import json
import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

from tests.telemetry.factories import rollout_with_history

pytestmark = pytest.mark.django_db

BUDGET = 700_000  # bytes: the first rollout page, everything included (issue 12)
ROOT = Path(__file__).resolve().parents[2]


def static_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="/static/([^"]+)"', html)


def test_first_rollout_page_transfers_less_than_700_kb(client, operator):
    rollout = rollout_with_history()  # a shadow stage: the page loads plotly.js for its charts
    client.force_login(operator)
    html = client.get(f"/rollouts/{rollout.pk}/").content.decode()
    assert "vendor/plotly/plotly-partial.min.js" in html and "plotly.min.js" not in html.replace("partial.min", "")
    total = len(html)  # the HTML itself, uncompressed
    for name in static_urls(html):
        path = finders.find(name)
        assert path, name
        total += len(gzip.compress(Path(path).read_bytes(), compresslevel=9))
    assert total <= BUDGET, f"{total:,} bytes"


def test_vendor_files_are_those_the_lockfile_pins():
    """static/vendor/ is built by scripts/build-vendor from scripts/vendor/package-lock.json: the
    banners name the pinned versions, so a hand-edited or stale bundle shows."""
    lock = json.loads((ROOT / "scripts" / "vendor" / "package-lock.json").read_text())["packages"]
    plotly = (ROOT / "static" / "vendor" / "plotly" / "plotly-partial.min.js").read_text()[:300]
    assert f"plotly.js v{lock['node_modules/plotly.js']['version']} " in plotly
    assert "partial bundle: scatter, bar, heatmap" in plotly
    idiomorph = (ROOT / "static" / "vendor" / "idiomorph" / "idiomorph-ext.min.js").read_text()[:200]
    assert f"idiomorph v{lock['node_modules/idiomorph']['version']} " in idiomorph
