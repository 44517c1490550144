"""Remove the client secret and access tokens from text a server sent, before it goes into a message.

An error body, an OAuth ``error_description`` or a trigger event can echo what we sent: the form
field (percent-encoded in either case, ``+`` for a space, or decoded), a JSON string (``\\/``,
``\\uXXXX``), an HTML page (``&#43;``, ``&amp;``), or the Basic credentials ``base64(id:secret)``.
Each known secret is matched with every character in any of those spellings, mixed freely, so one
pattern covers all of them. Bearer headers, ``access_token=...`` pairs and JWT-shaped strings are
removed even when we do not know the token. Control characters become spaces (no forged log lines)
and each field is cut to a length limit. No Airflow imports: the auth package uses it too.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "***"
#: The default length of one field of a message (an OAuth description, a ProblemDetails detail, ...).
FIELD_LIMIT = 300
#: The longest spelling of one character below (``%25F0%25..`` for a 4-byte UTF-8 character).
_MAX_SPELLING = 24

_NAMED_ENTITIES = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos"}
_JSON_SHORT = {"/": r"\/", '"': r"\"", "\\": r"\\", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t"}
_GENERIC = [
    # Authorization header values, as sent or percent/form-encoded.
    (re.compile(r"\b((?i:bearer)|Basic)(?:\s+|%20|\+)[A-Za-z0-9\-._~+/%]{8,}=*"), r"\1 " + REDACTED),
    # key=value or "key": "value" pairs of credentials.
    (
        re.compile(
            r"(?i)\b(client_secret|access_token|refresh_token|id_token|password)"
            r"((?:\\?[\"'])?\s*(?:[:=]|%3[AaDd])\s*(?:\\?[\"'])?)[^\s\"'&,;}\\]+"
        ),
        r"\1\2" + REDACTED,
    ),
    # JWTs (an access token we do not know, e.g. one a proxy added).
    (re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*"), REDACTED),
]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def scrub(
    text: object,
    secrets: Iterable[str | None] = (),
    *,
    basic_user: str | None = None,
    limit: int = FIELD_LIMIT,
) -> str:
    """``text`` (anything; it is ``str()``-ed) without ``secrets`` in any spelling, at most ``limit`` long.

    :param basic_user: the client id, so ``base64(client_id:secret)`` (HTTP Basic) is found too.
    """
    value = text if isinstance(text, str) else str(text)
    known = tuple(sorted({secret for secret in secrets if secret}, key=len, reverse=True))
    # Scrub a window a little longer than the limit, so a secret that straddles the cut goes whole.
    window = limit + _MAX_SPELLING * max((len(secret) for secret in known), default=0) + 200
    value = value[:window]
    pattern = _pattern(known, basic_user or "")
    if pattern is not None:
        value = pattern.sub(REDACTED, value)
    for generic, replacement in _GENERIC:
        value = generic.sub(replacement, value)
    value = _CONTROL.sub(" ", value)
    return value if len(value) <= limit else value[: max(limit - 3, 0)] + "..."


@functools.lru_cache(maxsize=64)
def _pattern(secrets: tuple[str, ...], basic_user: str) -> re.Pattern[str] | None:
    """One regular expression matching every spelling of every secret (built once per secret set)."""
    literals: list[str] = []
    for secret in secrets:
        literals += [secret, quote(secret, safe="")]
        pairs = {f"{basic_user}:{secret}", f"{quote_plus(basic_user)}:{quote_plus(secret)}"} if basic_user else set()
        for raw in {secret, *pairs}:
            for encode in (base64.b64encode, base64.urlsafe_b64encode):
                encoded = encode(raw.encode()).decode()
                literals += [encoded, encoded.rstrip("=")]
    if not literals:
        return None
    unique = sorted(set(literals), key=len, reverse=True)  # longest first: a padded form before its prefix
    return re.compile("|".join("".join(_spellings(char) for char in literal) for literal in unique))


def _hex(number: int, width: int) -> str:
    """``number`` in hexadecimal, either case: ``2B`` -> ``2[bB]``."""
    return "".join(f"[{d.lower()}{d.upper()}]" if d.isalpha() else d for d in f"{number:0{width}X}")


def _spellings(char: str) -> str:
    """A group matching ``char`` as itself or in any encoding a server could echo it in."""
    code = ord(char)
    utf8 = char.encode("utf-8", "surrogatepass")
    options = [re.escape(char)]
    options.append("".join("%" + _hex(byte, 2) for byte in utf8))  # percent-encoded, any case
    options.append("".join("%25" + _hex(byte, 2) for byte in utf8))  # encoded twice
    if code < 0x10000:
        options.append(r"\\[uU]" + _hex(code, 4))
    else:  # a JSON surrogate pair
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        options.append(r"\\[uU]" + _hex(high, 4) + r"\\[uU]" + _hex(low, 4))
    if char in _JSON_SHORT:
        options.append(re.escape(_JSON_SHORT[char]))
    options.append(f"&#0{{0,3}}{code};")  # HTML entities
    options.append(f"&#[xX]0{{0,3}}{_hex(code, 1)};")
    if char in _NAMED_ENTITIES:
        options.append(f"(?i:&{_NAMED_ENTITIES[char]};)")
    if char == " ":
        options.append(r"\+")  # form encoding
    elif char == "+":
        options.append(" ")  # a form field decoded once too often
    return "(?:" + "|".join(options) + ")"
