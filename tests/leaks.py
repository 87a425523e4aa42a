"""A detector of secrets in any stored form, written independently of ``engine.secrets``:
rather than listing the forms redaction knows, it decodes what it finds (URL-encoding, every
base64 or hex run at each alignment) and compares in any letter case."""

from __future__ import annotations

import base64
import binascii
import html
import re
import warnings
from urllib.parse import unquote, unquote_plus

_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_=-]{8,}")
_HEX_RUN = re.compile(r"[0-9A-Fa-f]{16,}")


def found(secret: str, haystack: str) -> bool:
    """Whether ``secret`` is in ``haystack`` raw, URL-encoded, HTML-escaped, JSON-escaped,
    base64 (standard or URL-safe, any alignment), or hex, in any letter case."""
    texts = {haystack, html.unescape(haystack), unquote(haystack), unquote_plus(haystack),
             _unescaped(haystack), _unescaped(html.unescape(haystack))}
    lowered = {secret.lower(), secret.upper().lower(), secret.casefold()}
    if any(low in text.lower() or low in text.casefold() for text in texts for low in lowered):
        return True
    wanted = _byte_forms(secret)
    return _in_base64(wanted, haystack) or _in_hex(wanted, haystack)


def _byte_forms(secret: str) -> set[bytes]:
    forms = set()
    for variant in (secret, secret.upper(), secret.lower()):
        for encoding in ("utf-8", "latin-1"):
            try:
                forms.add(variant.encode(encoding).lower())
            except UnicodeEncodeError:
                pass
    return forms


def _unescaped(text: str) -> str:
    """``text`` with JSON's and Python's string escapes (``\\"``, ``\\\\``, ``\\u00eb``,
    ``\\xeb``) decoded."""
    if "\\" not in text:
        return text
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # "\\q": kept as it is
            return text.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError:
        return text


def _in_base64(wanted: set[bytes], haystack: str) -> bool:
    for run in _BASE64_RUN.findall(haystack):
        plain = run.replace("-", "+").replace("_", "/").replace("=", "")
        for shift in range(4):
            chunk = plain[shift:]
            if len(chunk) % 4 == 1:  # a lone trailing character encodes no whole byte
                chunk = chunk[:-1]
            chunk += "=" * (-len(chunk) % 4)
            try:
                decoded = base64.b64decode(chunk).lower()
            except (ValueError, binascii.Error):
                continue
            if any(w in decoded for w in wanted):
                return True
    return False


def _in_hex(wanted: set[bytes], haystack: str) -> bool:
    for run in _HEX_RUN.findall(haystack):
        for shift in (0, 1):
            chunk = run[shift:]
            decoded = bytes.fromhex(chunk[: len(chunk) - len(chunk) % 2]).lower()
            if any(w in decoded for w in wanted):
                return True
    return False
