"""Making agent-supplied text safe to show: bounded, stripped of invisible controls, escaped."""

from __future__ import annotations

import html
import re

# C0/C1 controls (but tab and newline), bidi overrides/isolates and zero-width characters that can
# disguise what a string says.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def bounded(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def e(text: object, limit: int = 200) -> str:
    """Escape ``text`` for HTML element content or a quoted attribute, after bounding it."""
    cleaned = _INVISIBLE.sub("\ufffd", str(text))
    return html.escape(bounded(cleaned, limit), quote=True)
