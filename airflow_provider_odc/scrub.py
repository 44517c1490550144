"""Remove the client secret and access tokens from text a server sent, before it goes into a message.

An error body, an OAuth ``error_description`` or a trigger event can echo what we sent: the form
field (percent-encoded in either case, ``+`` for a space, or decoded), a JSON string (``\\/``,
``\\uXXXX``), an HTML page (``&#43;``, ``&amp;``), or the Basic credentials ``base64(id:secret)``.
Rather than listing every spelling, the text is read once into the bytes those spellings stand for
(each byte remembering where in the text it came from), the secrets are searched for in that, and
the text they came from is replaced. Any mix of spellings is found, and so is the start of a secret
that a server cut short. Bearer headers, ``access_token=...`` pairs and JWT-shaped strings are removed
even when we do not know the token. Control characters become spaces (no forged log lines) and each
field is cut to a length limit. No Airflow imports: the auth package uses it too.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "***"
#: The default length of one field of a message (an OAuth description, a ProblemDetails detail, ...).
FIELD_LIMIT = 300
#: A server that cuts a long field may keep only the start of a secret: this many bytes of it (or the
#: whole of a shorter one) are enough to be removed.
PARTIAL_PREFIX = 8
#: The longest spelling of one byte of a secret (``&#x0010FFFF;``), for the window scrubbed before the cut.
_MAX_SPELLING = 12

# One spelled unit of text: a surrogate pair or one \uXXXX, a JSON short escape, a (double) percent
# escape, an HTML character reference, or any single character.
_UNIT = re.compile(
    r"\\[uU]([dD][89abAB][0-9a-fA-F]{2})\\[uU]([dD][c-fC-F][0-9a-fA-F]{2})"
    r"|\\[uU]([0-9a-fA-F]{4})"
    r"|\\([/\"\\bfnrt])"
    r"|%(?:25)?([0-9a-fA-F]{2})"
    r"|&#(?:([0-9]{1,8})|[xX]([0-9a-fA-F]{1,7}));"
    r"|&(amp|lt|gt|quot|apos);"
    r"|(.)",
    re.DOTALL | re.IGNORECASE,
)
_JSON_SHORT = {"/": "/", '"': '"', "\\": "\\", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_GENERIC = [
    # Authorization header values, as sent or percent/form-encoded (and what follows a secret already
    # removed from one). Basic credentials (base64) have a digit, a capital or a symbol somewhere:
    # "Basic settings" is prose.
    (re.compile(r"\b((?i:bearer))(?:\s+|%20|\+)[A-Za-z0-9\-._~+/%*]{8,}=*"), r"\1 " + REDACTED),
    (re.compile(r"\b(Basic)(?:\s+|%20|\+)(?=[a-z]*[A-Z0-9+/%=*])[A-Za-z0-9+/%*]{8,}=*"), r"\1 " + REDACTED),
    # key=value or "key": "value" pairs of credentials.
    (
        re.compile(
            r"(?i)\b(client_secret|access_token|refresh_token|id_token|password)"
            r"((?:\\?[\"'])?\s*(?:[:=]|%3[AaDd])\s*(?:\\?[\"'])?)[^\s\"'&,;}\\]+"
        ),
        r"\1\2" + REDACTED,
    ),
    # JWTs (an access token we do not know, e.g. one a proxy added), whole or cut short by the server:
    # base64url of a JSON object starts with "eyJ".
    (re.compile(r"eyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*){0,2}"), REDACTED),
]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def quoted(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit``, for a value quoted in a message; never raises (an integer of
    more than 4300 digits has no repr)."""
    try:
        text = repr(value)
    except ValueError:
        text = f"<a {type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


def scrub(
    text: object,
    secrets: Iterable[str | None] = (),
    *,
    basic: tuple[str, str] | None = None,
    limit: int = FIELD_LIMIT,
) -> str:
    """``text`` (anything; it is ``str()``-ed) without ``secrets`` in any spelling, at most ``limit`` long.

    :param basic: ``(client_id, client_secret)``, so ``base64(client_id:client_secret)`` (HTTP Basic, as
        sent or with both parts form-encoded first, as RFC 6749 says) is found too.
    """
    try:
        value = text if isinstance(text, str) else str(text)
    except ValueError:  # an integer of more than 4300 digits
        value = quoted(text)
    needles = _needles([secret for secret in secrets if secret], basic)
    # Scrub a window a little longer than the limit, so a secret that straddles the cut goes whole.
    longest = max((len(needle) for needle in needles), default=0)
    value = value[: limit + _MAX_SPELLING * longest + 200]
    if needles:
        value = _remove_spelled(value, needles)
    # A secret that itself looks like an escape ("%41", "&#65;") is found as it is; and a secret's own escaped
    # spelling is found as it is too, where the text before it changes how it decodes (a literal backslash
    # before "\u001b..." makes the decoder read "\\" first).
    for spelling in sorted(_direct_spellings(needles), key=len, reverse=True):
        value = value.replace(spelling, REDACTED)
    for generic, replacement in _GENERIC:
        value = generic.sub(replacement, value)
    value = _CONTROL.sub(" ", value)
    return value if len(value) <= limit else value[: max(limit - 3, 0)] + "..."


def _needles(secrets: list[str], basic: tuple[str, str] | None) -> set[bytes]:
    """The byte strings to find: each secret, and the Basic credentials in base64 (padded or not)."""
    needles = {secret.encode("utf-8", "surrogatepass") for secret in secrets}
    if basic is not None and basic[1]:
        user, password = basic
        for pair in {f"{user}:{password}", f"{quote_plus(user)}:{quote_plus(password)}"}:
            for encode in (base64.b64encode, base64.urlsafe_b64encode):
                encoded = encode(pair.encode("utf-8", "surrogatepass"))
                needles |= {encoded, encoded.rstrip(b"=")}
    return needles


def _direct_spellings(needles: set[bytes]) -> set[str]:
    """Each needle as written, and its JSON and percent spellings, to be replaced where they stand."""
    spellings: set[str] = set()
    for needle in needles:
        plain = needle.decode("utf-8", "surrogatepass")
        json_text = json.dumps(plain)[1:-1]
        percent = quote(plain, safe="")
        spellings |= {plain, json_text, json_text.replace("/", "\\/"), json.dumps(plain, ensure_ascii=False)[1:-1]}
        spellings |= {percent, re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), percent), quote_plus(plain)}
    return {spelling for spelling in spellings if spelling}


def _remove_spelled(text: str, needles: set[bytes]) -> str:
    """Replace every stretch of ``text`` whose decoded bytes hold a needle (or its first bytes)."""
    decoded, starts, ends = _decode(text)
    canonical = bytes(decoded).replace(b"+", b" ")  # '+' and ' ' are one another's form encoding
    spans: list[tuple[int, int]] = []
    for needle in needles:
        wanted = needle.replace(b"+", b" ")
        head = wanted[:PARTIAL_PREFIX]
        found = canonical.find(head)
        while found != -1:
            length = len(head)
            while length < len(wanted) and found + length < len(canonical):
                if canonical[found + length] != wanted[length]:
                    break
                length += 1
            spans.append((starts[found], ends[found + length - 1]))
            found = canonical.find(head, found + length)
    if not spans:
        return text
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    pieces, position = [], 0
    for start, end in merged:
        pieces += [text[position:start], REDACTED]
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _decode(text: str) -> tuple[bytearray, list[int], list[int]]:
    """The bytes ``text`` spells (UTF-8), with the text span each byte came from."""
    decoded = bytearray()
    starts: list[int] = []
    ends: list[int] = []
    for unit in _UNIT.finditer(text):
        high, low, code, short, percent, decimal, hexadecimal, named, char = unit.groups()
        if high is not None:
            combined = 0x10000 + ((int(high, 16) - 0xD800) << 10) + (int(low, 16) - 0xDC00)
            data = chr(combined).encode()
        elif code is not None:
            data = chr(int(code, 16)).encode("utf-8", "surrogatepass")
        elif short is not None:
            data = _JSON_SHORT[short.lower()].encode() if short.lower() in _JSON_SHORT else short.encode()
        elif percent is not None:
            data = bytes([int(percent, 16)])
        elif decimal is not None or hexadecimal is not None:
            number = int(decimal) if decimal is not None else int(hexadecimal, 16)
            data = chr(number).encode("utf-8", "surrogatepass") if number <= 0x10FFFF else unit.group().encode()
        elif named is not None:
            data = html.unescape(unit.group()).encode()
        else:
            data = char.encode("utf-8", "surrogatepass")
        decoded += data
        starts += [unit.start()] * len(data)
        ends += [unit.end()] * len(data)
    return decoded, starts, ends
