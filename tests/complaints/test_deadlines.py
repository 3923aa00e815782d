"""Working-day calendar and complaint deadlines (pure), on China's 2026 calendar.

2026 facts used (State Council notice, as known by ``holidays``):
* National Day: Thu 10-01 .. Wed 10-07 off; Sun 09-20 and Sat 10-10 are make-up working days.
* Spring Festival: Mon 02-16 .. Mon 02-23 off (Sat 02-14, Sat 02-28 working).
* Labour Day: Fri 05-01 .. Tue 05-05 off (Sat 05-09 working).
Working hours 08:00-17:30 Asia/Shanghai (UTC+8, no DST).
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from twisted.internet.task import Clock

from callcenter.clock import local_datetime
from callcenter.complaints import deadlines as dl
from callcenter.complaints.workdays import WorkCalendar, WorkingHours, parse_hhmm

SH = ZoneInfo("Asia/Shanghai")
UTC = dt.timezone.utc


def sh(*a) -> dt.datetime:
    return dt.datetime(*a, tzinfo=SH)


@pytest.fixture(scope="module")
def cal():
    return WorkCalendar("CN", "Asia/Shanghai", WorkingHours(dt.time(8), dt.time(17, 30)))


def by_kind(items):
    return {d.kind: d for d in items}


# -- the calendar ------------------------------------------------------------

def test_makeup_and_holiday_days(cal):
    assert cal.is_working_day(dt.date(2026, 10, 10))       # Saturday, make-up working day
    assert cal.is_working_day(dt.date(2026, 9, 20))        # Sunday, make-up working day
    assert not cal.is_working_day(dt.date(2026, 10, 6))    # Tuesday, day off (调休)
    assert not cal.is_working_day(dt.date(2026, 10, 1))    # National Day
    assert not cal.is_working_day(dt.date(2026, 10, 11))   # ordinary Sunday
    assert cal.is_working_day(dt.date(2026, 10, 9))        # ordinary Friday
    assert cal.nth_working_day(dt.date(2026, 9, 30), 1) == dt.date(2026, 10, 8)
    assert cal.nth_working_day(dt.date(2026, 10, 9), 1) == dt.date(2026, 10, 10)


def test_clock_start_rule(cal):
    # inside working hours: at once
    assert cal.clock_start(sh(2026, 10, 9, 10, 0)) == sh(2026, 10, 9, 10, 0)
    # before opening on a working day: that day's opening
    assert cal.clock_start(sh(2026, 10, 9, 6, 30)) == sh(2026, 10, 9, 8, 0)
    # at or after closing: next working day's opening (Sat 10-10 is a working day)
    assert cal.clock_start(sh(2026, 10, 9, 17, 30)) == sh(2026, 10, 10, 8, 0)
    assert cal.clock_start(sh(2026, 10, 9, 23, 59)) == sh(2026, 10, 10, 8, 0)
    # on a day off: the next working day's opening (whole Golden Week skipped)
    assert cal.clock_start(sh(2026, 10, 1, 12, 0)) == sh(2026, 10, 8, 8, 0)
    # an ordinary weekend
    assert cal.clock_start(sh(2026, 10, 17, 11, 0)) == sh(2026, 10, 19, 8, 0)


def test_hospital_midnight_not_utc(cal):
    """00:30 Saturday in Shanghai is still Friday 16:30 in UTC: the hospital's day counts."""
    t = dt.datetime(2026, 10, 9, 16, 30, tzinfo=UTC)          # = Sat 10-10 00:30 +08
    assert cal.clock_start(t) == sh(2026, 10, 10, 8, 0)
    # 23:59 Friday +08 (15:59 UTC Friday) and 00:01 Saturday +08 both start Saturday 08:00,
    # while 07:59 UTC Friday (15:59 +08) is inside Friday's hours.
    assert cal.clock_start(sh(2026, 10, 9, 23, 59)) == cal.clock_start(sh(2026, 10, 10, 0, 1))
    assert cal.in_working_hours(dt.datetime(2026, 10, 9, 7, 59, tzinfo=UTC))
    assert not cal.in_working_hours(dt.datetime(2026, 10, 9, 16, 1, tzinfo=UTC))
    # a Sunday 23:30 +08 is Sunday 15:30 UTC: off; Monday 00:30 +08 (Sunday 16:30 UTC) too,
    # and both start Monday 08:00.
    assert cal.clock_start(sh(2026, 10, 18, 23, 30)) == sh(2026, 10, 19, 8, 0)
    assert cal.clock_start(dt.datetime(2026, 10, 18, 16, 30, tzinfo=UTC)) == sh(2026, 10, 19, 8, 0)


def test_add_working_days_weekend_and_holidays(cal):
    # Friday 15:00 + 1 working day -> Monday 15:00 (weekend skipped)
    assert cal.add_working_days(sh(2026, 10, 16, 15, 0), 1) == sh(2026, 10, 19, 15, 0)
    # Wednesday 09-30 10:00 + 1 -> Thursday 10-08 (Golden Week skipped)
    assert cal.add_working_days(sh(2026, 9, 30, 10, 0), 1) == sh(2026, 10, 8, 10, 0)
    # Thursday 10-08 + 3 -> Fri 10-09, Sat 10-10 (make-up), Mon 10-12
    assert cal.add_working_days(sh(2026, 10, 8, 9, 0), 3) == sh(2026, 10, 12, 9, 0)
    # received on the make-up Saturday counts like a weekday
    assert cal.add_working_days(sh(2026, 10, 10, 11, 0), 1) == sh(2026, 10, 12, 11, 0)
    # Spring Festival: Fri 02-13 14:00 + 1 -> Sat 02-14 (make-up) ; + 2 -> Tue 02-24
    assert cal.add_working_days(sh(2026, 2, 13, 14, 0), 1) == sh(2026, 2, 14, 14, 0)
    assert cal.add_working_days(sh(2026, 2, 13, 14, 0), 2) == sh(2026, 2, 24, 14, 0)
    # after hours: the clock starts at the next opening
    assert cal.add_working_days(sh(2026, 10, 16, 20, 0), 1) == sh(2026, 10, 20, 8, 0)


def test_add_working_time_carries_over(cal):
    # Friday 17:00 + 1 working hour -> 30 min Friday, 30 min next working day (Sat 10-10 make-up)
    assert cal.add_working_time(sh(2026, 10, 9, 17, 0), 3600) == sh(2026, 10, 10, 8, 30)
    # ordinary Friday 17:00 + 1h -> Monday 08:30
    assert cal.add_working_time(sh(2026, 10, 16, 17, 0), 3600) == sh(2026, 10, 19, 8, 30)
    # exactly to closing stays on that day
    assert cal.add_working_time(sh(2026, 10, 16, 16, 30), 3600) == sh(2026, 10, 16, 17, 30)
    assert cal.working_seconds_between(sh(2026, 10, 16, 17, 0), sh(2026, 10, 19, 8, 30)) == 3600


def test_parse_hours_and_bad_hours():
    assert parse_hhmm("08:30") == dt.time(8, 30)
    with pytest.raises(ValueError, match="workday_start"):
        parse_hhmm("8h", "workday_start")
    with pytest.raises(ValueError, match="before end"):
        WorkingHours(dt.time(18), dt.time(8))


# -- deadlines ---------------------------------------------------------------

def test_normal_phone_complaint(cal):
    pol = dl.Policy()
    got = by_kind(dl.initial_deadlines(pol, cal, severity="normal", channel="phone",
                                       received_at=sh(2026, 9, 30, 10, 0)))
    assert set(got) == {"start", "answer"}                      # phone: acknowledged on the call
    assert got["start"].due == sh(2026, 10, 8, 10, 0)           # 1 working day: after Golden Week
    assert got["answer"].due == sh(2026, 10, 10, 10, 0)         # 3: 10-08, 10-09, Sat 10-10
    assert got["answer"].due.tzinfo == UTC
    # warn at 80% of the working time: 3 x 9.5 h = 28.5 h; 80% = 22.8 h after Wed 10:00
    # Wed 10:00-17:30 = 7.5 h, Thu 9.5 h (17 h), then 5.8 h on Fri 10-09: 13:48
    assert got["answer"].warn == sh(2026, 10, 9, 13, 48)


def test_online_ack_within_one_working_hour(cal):
    pol = dl.Policy()
    got = by_kind(dl.initial_deadlines(pol, cal, severity="normal", channel="email",
                                       received_at=sh(2026, 10, 9, 22, 15)))
    assert got["ack"].due == sh(2026, 10, 10, 9, 0)    # after hours: 1 h from Saturday's (make-up) opening
    assert got["ack"].warn == sh(2026, 10, 10, 8, 48)
    calendar_ack = dl.Policy(ack_in_working_hours=False)
    got = by_kind(dl.initial_deadlines(calendar_ack, cal, severity="normal", channel="online",
                                       received_at=sh(2026, 10, 9, 22, 15)))
    assert got["ack"].due == sh(2026, 10, 9, 23, 15)


def test_urgent_is_round_the_clock_and_warns_at_once(cal):
    pol = dl.Policy()
    t = sh(2026, 10, 3, 2, 0)   # a holiday, at night
    got = by_kind(dl.initial_deadlines(pol, cal, severity="urgent", channel="voicemail", received_at=t))
    assert got["start"].due == sh(2026, 10, 3, 3, 0)
    assert got["start"].warn == t                                # escalated at once
    assert got["ack"].due == sh(2026, 10, 3, 3, 0)
    assert got["answer"].due == sh(2026, 10, 12, 8, 0)           # 3 working days from 10-08 08:00


def test_complex_progress_and_resolution(cal):
    pol = dl.Policy()
    got = by_kind(dl.initial_deadlines(pol, cal, severity="complex", channel="phone",
                                       received_at=sh(2026, 9, 28, 9, 0)))   # Monday
    assert set(got) == {"start", "progress"}
    # 7 working days from Mon 09-28: 29, 30, 10-08, 09, 10 (Sat), 12, 13
    assert got["progress"].due == sh(2026, 10, 13, 9, 0)
    res = dl.resolution_deadline(pol, cal, set_at=sh(2026, 10, 12, 9, 0), expected=dt.date(2026, 10, 20))
    assert res.kind == "answer" and res.due == sh(2026, 10, 20, 17, 30)
    with pytest.raises(ValueError, match="not in the future"):
        dl.resolution_deadline(pol, cal, set_at=sh(2026, 10, 12, 9, 0), expected=dt.date(2026, 10, 1))


def test_revisit_within_24_hours():
    d = dl.revisit_deadline(dl.Policy(), sh(2026, 10, 9, 16, 0))
    assert d.due == sh(2026, 10, 10, 16, 0) and not d.working
    assert d.warn == sh(2026, 10, 10, 11, 12)    # 80% of 24 h


def test_deadlines_from_the_injected_clock(cal):
    clock = Clock()
    clock.advance(sh(2026, 10, 16, 17, 0).timestamp())           # Friday 17:00 in Shanghai
    now = local_datetime(clock, "Asia/Shanghai")
    got = by_kind(dl.initial_deadlines(dl.Policy(), cal, severity="normal", channel="online",
                                       received_at=clock.seconds()))
    assert got["ack"].due == sh(2026, 10, 19, 8, 30)
    clock.advance(3600)                                          # an hour later: after hours
    got = by_kind(dl.initial_deadlines(dl.Policy(), cal, severity="normal", channel="online",
                                       received_at=clock.seconds()))
    assert got["ack"].due == sh(2026, 10, 19, 9, 0)
    assert now.hour == 17


def test_bad_severity():
    with pytest.raises(ValueError, match="severity"):
        dl.initial_deadlines(dl.Policy(), WorkCalendar(), severity="whatever", channel="phone",
                             received_at=0)


def test_policy_from_config_and_bad_config(tmp_path):
    from callcenter.config import ConfigError, load_config

    cfg = load_config(None, env={"CALLCENTER_COMPLAINTS_WORKDAY_START": "09:00",
                                 "CALLCENTER_COMPLAINTS_ANSWER_DAYS": "5"})
    pol = dl.Policy.from_config(cfg)
    assert pol.hours.start == dt.time(9) and pol.answer_days == 5 and pol.country == "CN"
    with pytest.raises(ConfigError, match="workday_end"):
        load_config(None, env={"CALLCENTER_COMPLAINTS_WORKDAY_END": "5pm"})
    with pytest.raises(ConfigError, match="fax"):
        load_config(None, env={"CALLCENTER_COMPLAINTS_ACK_CHANNELS": "email,fax"})
    bad = load_config(None, env={"CALLCENTER_COMPLAINTS_WORKDAY_START": "18:00"})
    with pytest.raises(dl.PolicyError, match=r"\[complaints\].*before end"):
        dl.Policy.from_config(bad)
    from callcenter.domain import build_domain

    with pytest.raises(ConfigError, match=r"\[complaints\].*before end"):  # at start-up, one line
        build_domain(bad)
