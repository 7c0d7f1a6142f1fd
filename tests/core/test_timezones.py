"""A person's time zone: chosen on the account page (or accepted from the browser's proposal), kept
on their profile, and every time a page shows is in it, with its abbreviation; the footer says which."""
from datetime import datetime, timedelta, timezone as dt_timezone
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template
from django.utils import timezone

from rolloutops.exceptions import Invalid
from rolloutops.models import AuditEntry, Profile
from rolloutops.timezones import time_zone_of, time_zone_set
from tests.telemetry.factories import rollout_with_history

pytestmark = pytest.mark.django_db


def test_a_person_chooses_a_zone_which_is_audited(operator):
    assert time_zone_of(operator) == ""
    time_zone_set(user=operator, time_zone="Europe/Berlin")
    assert Profile.objects.get(user=operator).time_zone == "Europe/Berlin" == time_zone_of(operator)
    entry = AuditEntry.objects.get(action="profile.time_zone_set")
    assert (entry.before, entry.after) == ({"time_zone": None}, {"time_zone": "Europe/Berlin"})
    time_zone_set(user=operator, time_zone="Europe/Berlin")  # no change, no entry
    assert AuditEntry.objects.filter(action="profile.time_zone_set").count() == 1


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "europe/berlin", "Europe/Berlin\x00"])
def test_only_real_zones_are_accepted(operator, name):
    with pytest.raises(Invalid, match="is not a time zone"):
        time_zone_set(user=operator, time_zone=name)
    assert not Profile.objects.filter(user=operator).exists()


def test_until_chosen_pages_say_the_servers_zone_and_propose_the_browsers(client, operator):
    client.force_login(operator)
    html = client.get("/").content.decode()
    assert "times in <strong>UTC</strong> (UTC)" in html
    assert 'data-tz-proposal' in html and "choose your time zone" in html


def test_the_chosen_zone_is_used_on_every_page_and_the_footer_says_so(client, operator):
    fast_rollout = rollout_with_history()
    client.force_login(operator)
    response = client.post("/account/", {"time_zone": "Europe/Berlin", "next": f"/rollouts/{fast_rollout.pk}/"})
    assert response.status_code == 302 and response["Location"] == f"/rollouts/{fast_rollout.pk}/"
    html = client.get(f"/rollouts/{fast_rollout.pk}/").content.decode()
    local = timezone.localtime(fast_rollout.created_at, ZoneInfo("Europe/Berlin"))
    assert f"times in <strong>Europe/Berlin</strong> ({local.tzname()})" in html
    assert f">{local:%Y-%m-%d %H:%M} {local.tzname()}</time>" in html  # "started …" in Berlin time
    assert "data-tz-proposal" not in html and "Times are now shown in Europe/Berlin." in html


def test_the_zone_follows_the_person_not_the_browser(client, operator, manager):
    time_zone_set(user=operator, time_zone="Asia/Kolkata")
    client.force_login(operator)
    assert "times in <strong>Asia/Kolkata</strong> (IST)" in client.get("/").content.decode()
    client.force_login(manager)
    assert "times in <strong>UTC</strong>" in client.get("/").content.decode()


def test_a_bad_choice_is_refused_in_place(client, operator):
    client.force_login(operator)
    response = client.post("/account/", {"time_zone": "Atlantis/Capital"})
    assert response.status_code == 422
    html = response.content.decode()
    assert 'aria-invalid="true"' in html and "is not a time zone" in html


def test_the_proposal_returns_only_to_a_page_of_this_site(client, operator):
    client.force_login(operator)
    response = client.post("/account/", {"time_zone": "UTC", "next": "https://elsewhere.example/"})
    assert response["Location"] == "/account/"


def render_when(value, *args):
    return Template("{% load rolloutops_tags %}{% when value " + " ".join(args) + " %}").render(Context({"value": value}))


def test_when_shows_the_zone_abbreviation_and_how_long_ago_within_a_day():
    with timezone.override(ZoneInfo("America/New_York")):
        recent = timezone.now() - timedelta(minutes=3)
        local = timezone.localtime(recent)
        html = render_when(recent)
        assert f">{local:%Y-%m-%d %H:%M} {local.tzname()} <span class=\"rel\">· 3\xa0minutes ago</span></time>" in html
        assert f'datetime="{recent.isoformat()}"' in html and "(America/New_York)" in html
        old = datetime(2026, 1, 15, 12, 0, tzinfo=dt_timezone.utc)
        assert ">2026-01-15 07:00 EST</time>" in render_when(old)  # no relative part a day on
        assert '3\xa0minutes ago <span class="rel">(' in render_when(recent, 'relative="only"')


@pytest.mark.parametrize("fmt", ["Y-m-d H:i", "Y-m-d H:i:s", "Y-m-d", "H:i:s", "H:i"])
def test_the_numeric_formats_are_dateformats_digits(fmt):
    # The tags format these without django.utils.dateformat: the same text, whatever the time.
    from django.utils.dateformat import format as date_format

    from rolloutops.templatetags.rolloutops_tags import _format
    zone = ZoneInfo("America/St_Johns")
    for value in (datetime(7, 1, 2, 3, 4, 5, tzinfo=dt_timezone.utc), datetime(2026, 11, 29, 23, 59, 59, 999999, tzinfo=zone),
                  datetime(2026, 3, 8, 0, 0, tzinfo=zone), datetime(9999, 12, 31, 9, 9, 9)):
        assert _format(value, fmt) == date_format(value, fmt)
