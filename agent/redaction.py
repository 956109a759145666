"""Credentials out of text: one rule, used wherever a URL or a tool's message is shown or stored."""

from __future__ import annotations

import re

_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def redact_url(text: str) -> str:
    """``https://user:pass@host/x.git`` → ``https://host/x.git``, anywhere in ``text``.

    scp-like SSH addresses (``git@host:path``) carry no secret and are left alone.
    """
    return _URL_USERINFO.sub(r"\g<scheme>", text)
