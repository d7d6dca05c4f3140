"""A person refused entry gets a follow-up: where they went and a contact, as an event
that the district accepts, and the day report lists the refusals still without one."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from edge.clock import VirtualClock
from edge.events import Kind
from edge.post import Post
from sync.batch import PayloadError
from sync.schema import check_event
from tests.support.web_support import Screen


@pytest.fixture
def refused(open_post: Callable[..., Post], clock: VirtualClock) -> Screen:
    """A resident (seq 1) refused at 38.2 then 38.0: waiting for a follow-up."""
    screen = Screen(open_post([38.2, 38.0]))
    screen.press("masuk_warga")
    clock.advance(301)
    assert screen.post_form("/recheck/1", as_json=True).json["pattern"] == "refused"  # type: ignore[index]
    return screen


def _open_list(screen: Screen) -> str:
    report = screen.text("/report")
    assert 'id="r-referrals-open"' in report
    return report.split("<h2>Rujukan yang belum ditindaklanjuti</h2>")[1].split("</table>")[0]


def test_referral_open_until_its_follow_up_is_recorded(refused: Screen) -> None:
    assert 'href="/referrals/1"' in _open_list(refused)
    assert refused.get("/api/summary").json["referrals_open"] == 1  # type: ignore[index]
    form = refused.text("/referrals/1")
    assert "Dirujuk ke puskesmas" in form and "Diantar pulang" in form and "Menolak" in form
    answer = refused.post_form("/referrals/1", {"referral": "home", "contact": "Pak RT 0812"})
    assert answer.status_code == 302
    note = refused.post.store.recent(1)[0]
    assert note["kind"] == Kind.NOTE and note["ref"] == 1
    assert note["data"] == {"referral": "home", "contact": "Pak RT 0812"}
    assert "Semua rujukan sudah ditindaklanjuti" in refused.text("/report")
    assert refused.get("/api/summary").json["referrals_open"] == 0  # type: ignore[index]
    day = refused.text("/report").split('id="referrals"')[1].split("</table>")[0]
    assert "Diantar pulang" in day and "Pak RT 0812" in day
    assert "Tindak lanjut rujukan" in refused.text(f"/event/{note['seq']}")


@pytest.mark.parametrize(
    "form",
    [{}, {"referral": "moon"}, {"referral": "puskesmas", "contact": "x" * 81}],
    ids=["nothing", "unknown", "long-contact"],
)
def test_referral_bad_follow_up_is_refused_and_nothing_stored(
    refused: Screen, form: dict[str, str]
) -> None:
    before = refused.post.store.last_seq
    response = refused.post_form("/referrals/1", form)
    assert response.status_code == 400
    assert refused.post.store.last_seq == before


def test_referral_only_for_a_refused_entry(refused: Screen) -> None:
    refused.press("masuk_warga")  # seq 3, normal
    assert refused.get("/referrals/3").status_code == 404
    assert refused.post_form("/referrals/3", {"referral": "home"}).status_code == 404


def test_referral_note_is_accepted_by_the_district(refused: Screen) -> None:
    refused.post_form("/referrals/1", {"referral": "puskesmas", "contact": "0812 3456 789"})
    note = refused.post.store.recent(1)[0]
    check_event(note, note["post"])  # the district's schema takes it as it is
    with pytest.raises(PayloadError):
        check_event({**note, "data": {"referral": "moon"}}, note["post"])
