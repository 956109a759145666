"""Making agent-supplied text safe to show: bounded, stripped of invisible controls, escaped."""

from __future__ import annotations

import html
import re

# Everything that can hide or reorder what a string says: C0/C1 controls (but tab and newline),
# every format character of Unicode (category Cf: bidi marks, embeddings, overrides and isolates,
# U+061C ARABIC LETTER MARK, zero-width characters, soft hyphen, tag characters, ...), line and
# paragraph separators, lone surrogates and non-characters. Each becomes U+FFFD. A unit test
# checks this list against the running Python's Unicode database.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0000-\U000e0fff]"
)


def bounded(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def e(text: object, limit: int = 200) -> str:
    """Escape ``text`` for HTML element content or a quoted attribute, after bounding it."""
    cleaned = _INVISIBLE.sub("\ufffd", str(text))
    return html.escape(bounded(cleaned, limit), quote=True)
