"""Phone numbers: the one place that parses, normalises and formats them.

Every number the service stores is in one form, :func:`canonical`: E.164
(``+8613800138001``) when ``phonenumbers`` finds it valid for the hospital's region
(``[hospital] region``); anything else Asterisk reports (an extension, a short service
number) is kept as its digits, with a leading ``+`` if it had one, so it stays
searchable.  ``canonical`` is idempotent, so a look-up canonicalises the query and
compares it with the stored value: any form typed or received finds the row.

:func:`normalise` is the strict variant for numbers we are going to *dial* (imports,
callback requests): an invalid number is a :class:`PhoneError` naming the reason.
"""
from __future__ import annotations

import functools
import re

import phonenumbers
from phonenumbers import PhoneMetadata

from callcenter.errors import InvalidInput

DEFAULT_REGION = "CN"


class PhoneError(InvalidInput):
    """A number that cannot be dialled; the message says why."""


# A Chinese mobile number, national (``13800138001``) or E.164 (``+8613800138001``): most
# callers.  Its E.164 form is plain text work, so the parse (~30-45 µs) is skipped for it.
# The pattern is phonenumbers' own CN mobile pattern, so it follows a metadata update;
# tests/test_phones.py checks the shortcut equal to the parse over every 1xx/1xxx prefix.
_CN_MOBILE = re.compile(PhoneMetadata.metadata_for_region("CN").mobile.national_number_pattern)


def _cn_mobile_e164(text: str) -> str | None:
    """E.164 of a bare CN mobile number (region CN), else None: ask phonenumbers."""
    national = text[3:] if text.startswith("+86") else text
    if len(national) == 11 and national.isascii() and national.isdigit() and _CN_MOBILE.fullmatch(national):
        return "+86" + national
    return None


@functools.lru_cache(maxsize=8192)
def canonical(raw: str | None, region: str = DEFAULT_REGION) -> str:
    """The stored form: E.164 when valid for ``region``, else the digits (``+`` kept); ``""`` for none.

    Asterisk's placeholders for an unknown caller (``<unknown>``, ``unknown``) give ``""``.
    """
    if not raw:
        return ""
    text = raw.strip()
    if text.startswith("<"):
        return ""
    if region.upper() == "CN":
        fast = _cn_mobile_e164(text)
        if fast is not None:
            return fast
    return _parsed(text, region)


def _parsed(text: str, region: str) -> str:
    """:func:`canonical` by phonenumbers' parse (``text`` stripped, not a placeholder)."""
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        return ""
    cleaned = "+" + digits if text.startswith("+") else digits  # parse this, so canonical is idempotent
    try:
        num = phonenumbers.parse(cleaned, region.upper())
        if phonenumbers.is_valid_number(num):
            return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    return cleaned


def normalise(raw: str, region: str = DEFAULT_REGION) -> str:
    """``'138 0013 8001'`` -> ``'+8613800138001'``; raises :class:`PhoneError` with the reason."""
    text = (raw or "").strip()
    if not text:
        raise PhoneError("phone number is empty")
    try:
        num = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"not a phone number ({exc.args[0] if exc.args else exc})") from None
    if not phonenumbers.is_valid_number(num):
        raise PhoneError(f"not a valid phone number for region {region.upper()}")
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def dial_string(e164: str, fmt: str = "national") -> str:
    """What goes into the Originate channel: national digits (trunk prefix included) or E.164."""
    if fmt == "e164":
        return e164
    num = phonenumbers.parse(e164, None)
    national = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.NATIONAL)
    return "".join(ch for ch in national if ch.isdigit())
