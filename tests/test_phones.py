"""callcenter.phones: the one stored form of a phone number, and look-ups in any form."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from callcenter.phones import PhoneError, canonical, dial_string, normalise


@pytest.mark.parametrize("raw,stored", [
    ("13800138001", "+8613800138001"),          # what Asterisk reports for a mobile caller
    ("138 0013 8001", "+8613800138001"),
    ("+86 138-0013-8001", "+8613800138001"),
    ("008613800138001", "+8613800138001"),
    ("021 6888 8888", "+862168888888"),          # landline with trunk prefix
    ("1001", "1001"),                           # an extension: digits, not E.164
    ("+999123", "+999123"),                     # unknown country: digits with the +
    ("<unknown>", ""), ("", ""), (None, ""), ("unknown", ""),
])
def test_canonical_forms(raw, stored):
    assert canonical(raw, "CN") == stored


@settings(deadline=None)  # no timing in unit tests: a loaded machine must not fail it
@given(st.text(alphabet="0123456789+ -()<>abc", max_size=20))
def test_canonical_is_idempotent(raw):
    """Look-ups canonicalise the query and compare with the stored value: that needs
    canonical(canonical(x)) == canonical(x) for anything Asterisk or a user may send."""
    once = canonical(raw, "CN")
    assert canonical(once, "CN") == once


def test_normalise_is_strict_and_dial_string_goes_back():
    assert normalise("13800138001") == "+8613800138001"
    with pytest.raises(PhoneError, match="not a valid phone number for region CN"):
        normalise("1001")
    with pytest.raises(PhoneError, match="empty"):
        normalise(" ")
    assert dial_string("+8613800138001") == "13800138001"
    assert dial_string("+862168888888") == "02168888888"
    assert dial_string("+8613800138001", "e164") == "+8613800138001"


def test_patient_record_finds_rows_whatever_form_the_number_is_given_in(db):
    """The screen pop looks a caller up by the number Asterisk reports (national digits);
    patients, queue calls and complaints store E.164."""
    import datetime as dt

    from tests import support
    from callcenter.queuecalls.models import QueueCall
    from callcenter.web.data import patient_record
    from dialer.campaigns import Settings as DialerSettings
    from dialer.importer import import_rows

    now = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.timezone.utc)
    with db.session() as s:
        r = import_rows(s, "patients", [{"patient_id": "P1", "name": "王小明", "phone": "138 0013 8001"}], "t",
                        region="CN", settings=DialerSettings())
        assert not r.errors
        s.add(QueueCall(uniqueid="1.1", linkedid="1.1", queue="consultation", leg=1,
                        caller_number=canonical("13800138001"), caller_name="", entered_at=now,
                        outcome="answered"))
        support.complaints().open_ticket(s, actor="t", category="fees", received_at=now, patient_phone="+8613800138001")
        s.commit()
    for form in ("13800138001", "+8613800138001", "+86 138 0013 8001"):
        with db.session() as s:
            rec = patient_record(s, form, region="CN")
        assert rec["patient_id"] is not None and rec["name"] == "王小明", form
        assert [c["uniqueid"] for c in rec["calls"]] == ["1.1"], form
        assert len(rec["complaints"]) == 1, form



def test_the_cn_mobile_shortcut_equals_the_parse_for_every_prefix():
    """canonical() skips phonenumbers for a bare CN mobile number: exactly what the parse gives."""
    import random

    import phonenumbers

    from callcenter.phones import _cn_mobile_e164, _parsed

    rng = random.Random(11)
    taken = 0
    for prefix in [f"1{p:02d}" for p in range(100)] + [f"1{p:03d}" for p in range(1000)]:
        for _ in range(6):
            national = prefix + "".join(rng.choice("0123456789") for _ in range(11 - len(prefix)))
            for raw in (national, "+86" + national):
                fast = _cn_mobile_e164(raw)
                if fast is not None:
                    taken += 1
                    assert fast == _parsed(raw, "CN"), raw
                elif _parsed(raw, "CN") == "+86" + national:  # valid, not taken: then not a mobile
                    kind = phonenumbers.number_type(phonenumbers.parse(raw, "CN"))
                    assert kind not in (phonenumbers.PhoneNumberType.MOBILE,
                                        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE), raw
    assert taken > 5000  # really taken for mobile numbers (6,886 of the 13,200 tried)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(alphabet="0123456789+ -", min_size=1, max_size=16),
                 st.from_regex(r"(\+86)?1[0-9]{10}", fullmatch=True)))
def test_the_cn_mobile_shortcut_never_differs_from_the_parse(raw):
    from callcenter.phones import _cn_mobile_e164, _parsed

    fast = _cn_mobile_e164(raw.strip())
    if fast is not None:
        assert fast == _parsed(raw.strip(), "CN")
