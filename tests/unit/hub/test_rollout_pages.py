"""The rollout picture's HTML: waves, bars, failing clusters; agent-supplied text is escaped."""

from __future__ import annotations

from hub.rollout_model import Member, Memory, WaveSpec
from hub.rollout_pages import section
from hub.rollouts import advance

C = "c" * 40


def test_a_halted_rollout_shows_its_waves_its_bar_and_the_escaped_error():
    memory = Memory.start("web", C, (WaveSpec("canary", size=2), WaveSpec("rest", size=3)), now=0)
    members = [
        Member("a", 1, C, "Failed", error="<script>alert(1)</script>"),
        Member("b", 1, "0" * 40, "Ready", online=False),
    ]
    html = section([advance(memory, members, 1, paused=False)], (), only_active=True)
    assert 'data-state="halted"' in html
    assert "1 failed, 1 offline" in html
    assert "3 not yet" in html  # the rest wave: nobody heard from yet
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_a_complete_rollout_is_left_off_the_fleet_page_but_shown_on_the_bundle_page():
    memory = Memory.start("web", C, (WaveSpec("only"),), now=0)
    view = advance(memory, [Member("a", 1, C, "Ready")], 1, paused=False)
    assert view.state == "complete"
    assert section([view], (), only_active=True) == ""
    assert 'data-state="complete"' in section([view], (), only_active=False)
