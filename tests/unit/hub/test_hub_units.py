"""Small hub parts with rules of their own: text neutralisation against the whole Unicode database,
query numbers, the read cache, rate-limited logs."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from starlette.responses import Response

from hub.filters import BadQuery, page_number, window
from hub.html_text import e
from hub.ratelog import RateLimiter
from hub.readcache import ReadCache


def test_every_invisible_or_reordering_character_is_neutralised() -> None:
    """Checked against the running Python's Unicode database, not a hand-picked list."""
    missed = []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        category = unicodedata.category(char)
        hidden = category in ("Cf", "Zl", "Zp", "Cs") or (category == "Cc" and char not in "\t\n")
        if hidden and char in e(f"a{char}b"):
            missed.append(f"U+{code:04X}")
    assert missed == []


def test_visible_text_is_kept() -> None:
    text = "Zürich café 東京 عربى ☕ tab\tnewline\n"
    assert e(text) == text


@pytest.mark.parametrize("raw", ["²", "\u0661", "0", "-1", "1.0", "1e3", " 1", "9" * 5000, "x"])
def test_page_must_be_a_positive_ascii_number(raw: str) -> None:
    with pytest.raises(BadQuery, match="page"):
        page_number({"page": raw})


def test_window_defaults_and_bounds() -> None:
    assert window({}) == (0, 200)
    assert window({"offset": "40", "limit": "1000"}) == (40, 1000)
    with pytest.raises(BadQuery, match="limit"):
        window({"limit": "1001"})


def test_read_cache_reuses_an_answer_for_its_max_age_only() -> None:
    now = [100.0]
    cache = ReadCache(1.0, clock=lambda: now[0])
    cache.put("/?", Response(b"first", 200, media_type="text/html"), version=7, computed_at=now[0])
    cache.put("/x?", Response(b"missing", 404), version=7, computed_at=now[0])
    hit = cache.get("/?", 7)
    assert hit is not None
    assert hit.body == b"first"
    assert hit.headers["content-type"].startswith("text/html")
    assert cache.get("/x?", 7) is None  # only 200 answers are kept
    now[0] += 1.5
    assert cache.get("/?", 7) is None
    assert ReadCache(0.0).get("/?", 7) is None


def test_a_quiet_hub_never_answers_from_before_a_change() -> None:
    now = [100.0]
    cache = ReadCache(1.0, clock=lambda: now[0])
    cache.put("/?", Response(b"old"), version=7, computed_at=now[0])
    now[0] += 0.01
    assert cache.get("/?", 8) is None  # one report committed since: compute afresh
    cache.put("/?", Response(b"new"), version=8, computed_at=now[0])
    now[0] += 0.2
    busy = cache.get("/?", 8 + 30)  # 30 changes in 0.2 s: under load, a 0.2 s old answer will do
    assert busy is not None
    assert busy.body == b"new"
    now[0] += 0.7
    assert cache.get("/?", 8 + 31) is None  # 31 changes in 0.9 s is not busy


def test_rate_limiter_lets_one_through_per_interval_and_counts_the_rest() -> None:
    now = [0.0]
    limiter = RateLimiter(10.0, clock=lambda: now[0])
    assert limiter.allow("shed") == 0
    assert [limiter.allow("shed") for _ in range(5)] == [None] * 5
    assert limiter.allow("other") == 0
    now[0] += 11
    assert limiter.allow("shed") == 5
