"""Phone numbers: validated and normalised to E.164 with ``phonenumbers``."""
from __future__ import annotations

import phonenumbers

from callcenter.errors import InvalidInput


class PhoneError(InvalidInput):
    """Not a phone number we can dial (the message says why)."""


def normalise(raw: str, region: str = "CN") -> str:
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
