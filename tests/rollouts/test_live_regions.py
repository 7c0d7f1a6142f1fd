"""The rollout page's and the inbox's live regions (docs/pages.md): a poll answers figures and never a
form while nothing changed; a change brings the actions, history and requests out of band; an action
answers everything out of band, its message into the page's message area."""
import re

import pytest

from rollouts.promotions import promotion_approve, promotion_request
from rollouts.services import rollout_pause
from rolloutops.exceptions import DomainError

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


def stamp_of(html: str) -> str:
    return re.search(r'id="rollout-seen" name="seen" value="([^"]+)"', html).group(1)


def test_a_poll_with_nothing_changed_answers_the_figures_and_no_form(client, operator, fast_rollout):
    client.force_login(operator)
    page = client.get(f"/rollouts/{fast_rollout.pk}/").content.decode()
    live = page.split('<div id="live-panel"')[1].split("{# ")[0]
    assert "<form" not in page.split('<div id="live-panel"')[1].split('id="rollout-actions"')[0]
    assert 'data-live' in live and 'hx-swap="morph"' in live and 'hx-include="#rollout-seen"' in live
    poll = client.get(f"/rollouts/{fast_rollout.pk}/", {"seen": stamp_of(page)}, headers=HX).content.decode()
    assert poll.lstrip().startswith('<div id="live-panel"') and "<form" not in poll
    assert "hx-swap-oob" not in poll


def test_a_poll_after_a_change_brings_actions_history_and_requests(client, operator, fast_rollout):
    client.force_login(operator)
    seen = stamp_of(client.get(f"/rollouts/{fast_rollout.pk}/").content.decode())
    rollout_pause(actor=operator, rollout=fast_rollout, reason="vendor outage")  # by someone else, say
    poll = client.get(f"/rollouts/{fast_rollout.pk}/", {"seen": seen}, headers=HX).content.decode()
    assert 'id="rollout-actions" class="card" aria-label="Actions" hx-swap-oob="morph"' in poll
    assert 'id="rollout-history" class="card" hx-swap-oob="morph"' in poll and "vendor outage" in poll
    assert 'id="rollout-promotions" class="card" hx-swap-oob="morph"' in poll
    assert 'id="action-resume"' in poll and 'id="action-pause"' not in poll
    assert stamp_of(poll) != seen


def test_a_new_request_moves_the_stamp(client, operator, manager, fast_rollout):
    client.force_login(operator)
    seen = stamp_of(client.get(f"/rollouts/{fast_rollout.pk}/").content.decode())
    try:
        promotion_request(actor=operator, rollout=fast_rollout)
    except DomainError:
        pass
    poll = client.get(f"/rollouts/{fast_rollout.pk}/", {"seen": seen}, headers=HX).content.decode()
    assert 'id="rollout-promotions" class="card" hx-swap-oob="morph"' in poll and "No promotion requested yet" not in poll


def test_an_action_answers_everything_out_of_band_with_its_message(client, operator, fast_rollout):
    client.force_login(operator)
    response = client.post(f"/rollouts/{fast_rollout.pk}/pause/", {"reason": "checking a spike"}, headers=HX)
    html = response.content.decode()
    assert "rolloutChanged" in response["HX-Trigger"]
    for region in ("live-panel", "rollout-actions", "rollout-history", "rollout-promotions"):
        assert re.search(rf'id="{region}"[^>]*hx-swap-oob="morph"', html), region
    assert '<div id="messages" class="messages-region" aria-live="polite" hx-swap-oob="true">' in html
    assert "Paused: all traffic goes to humans." in html and "checking a spike" in html
    # The forms send nothing back in place of themselves (hx-swap="none"); only the regions above move.
    page = client.get(f"/rollouts/{fast_rollout.pk}/").content.decode()
    assert all('hx-swap="none"' in form for form in re.findall(r'<form id="action-[^>]*>', page))


def test_the_inbox_poll_refreshes_figures_adds_new_requests_and_marks_decided_ones(client, operator, manager,
                                                                                      manager2, fast_rollout):
    promotion = promotion_request(actor=operator, rollout=fast_rollout)
    client.force_login(manager)
    page = client.get("/rollouts/approvals/").content.decode()
    assert f'id="inbox-shown" name="shown" value="{promotion.pk}"' in page
    assert '<div id="inbox-live" data-live' in page and 'hx-swap="none"' in page
    # A card's form is outside everything a poll replaces.
    figures = page.split(f'id="promotion-{promotion.pk}-figures"')[1].split(f'id="promotion-{promotion.pk}-decide"')[0]
    assert "<form" not in figures

    poll = client.get("/rollouts/approvals/", {"shown": str(promotion.pk)}, headers=HX).content.decode()
    assert f'id="promotion-{promotion.pk}-figures" hx-swap-oob="morph"' in poll and "<form" not in poll
    assert "hx-swap-oob=\"beforeend:#inbox-cards\"" not in poll

    unseen = client.get("/rollouts/approvals/", {"shown": ""}, headers=HX).content.decode()
    assert 'hx-swap-oob="beforeend:#inbox-cards"' in unseen and f'id="promotion-{promotion.pk}"' in unseen
    assert '<p id="inbox-empty" hx-swap-oob="delete">' in unseen

    promotion_approve(actor=manager2, promotion=promotion)  # another manager decides meanwhile
    after = client.get("/rollouts/approvals/", {"shown": str(promotion.pk)}, headers=HX).content.decode()
    assert f'id="promotion-{promotion.pk}-decide" hx-swap-oob="morph"' in after
    assert "Nothing left to decide here" in after and "milo decided" in after
    assert "Approve</button>" not in after
