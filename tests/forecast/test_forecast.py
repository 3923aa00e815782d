"""The forecast recovers known weekly + intraday seasonality; holidays follow the hospital calendar;
too little history is an error naming what is missing."""
from __future__ import annotations

import datetime as dt

import pytest

from callcenter.complaints.workdays import WorkCalendar
from callcenter.forecast import MAKEUP, SUNDAY, NotEnoughHistory, day_type, forecast_queue
from callcenter.staffing_plan import plan

from .simulated import WEEKLY, expected, simulate

CAL = WorkCalendar("CN", "Asia/Shanghai")
START = dt.date(2026, 11, 2)  # a Monday; November has no Chinese public holiday


def week(end: dt.date) -> list[dt.date]:
    return [end + dt.timedelta(days=i) for i in range(7)]


def test_four_simulated_weeks_recover_the_weekly_and_intraday_pattern():
    hist = simulate(START, 28)
    end = START + dt.timedelta(weeks=4)
    fc = forecast_queue(hist, CAL, first=end - dt.timedelta(weeks=8), end=end, days=week(end), queue="general")
    truth = sum(expected(f.day, f.slot, 400.0) for f in fc)
    wape = sum(abs(f.calls - expected(f.day, f.slot, 400.0)) for f in fc) / truth
    assert wape < 0.12, wape          # docs/forecast.md: per half hour within 12 % of the true rate
    for d in week(end):
        total = sum(f.calls for f in fc if f.day == d)
        assert total == pytest.approx(400.0 * WEEKLY[d.weekday()], abs=0.06 * 400.0), d
    assert all(f.calls == 0 for f in fc if f.slot < 16)   # nobody calls at night
    assert all(f.aht_seconds == pytest.approx(180.0) for f in fc)


def test_back_test_error_is_near_the_poisson_floor_and_staffing_follows_the_peak():
    hist = simulate(START, 28)
    end = START + dt.timedelta(weeks=4)
    p = plan(hist, CAL, end=end, days=week(end), target=30.0, goal=0.8)
    bt = p["backtest"]
    assert bt["intervals"] == 2 * 7 * 48 and 0 < bt["wape"] < 0.30, bt["wape"]
    assert 0.15 < bt["noise_floor_wape"] < bt["wape"] < bt["noise_floor_wape"] + 0.05  # near the Poisson floor
    assert bt["mape"] is not None and {r["time"] for r in bt["by_interval"]} >= {"09:00", "16:30"}
    monday = {r["time"]: r for r in p["rows"] if r["day"] == end.isoformat()}
    assert monday["09:00"]["agents_needed"] > monday["16:00"]["agents_needed"] > 0
    assert monday["03:00"]["agents_needed"] == 0 and monday["09:00"]["expected_service_level"] >= 0.8
    past = {(r["day"], r["time"]): r for r in p["past"]}
    assert past[((end - dt.timedelta(days=7)).isoformat(), "09:00")]["agents_seen_answering"] == 5


def test_public_holiday_is_a_sunday_and_make_up_day_a_working_day():
    assert day_type(CAL, dt.date(2026, 10, 6)) == SUNDAY      # Tuesday in Golden Week
    assert day_type(CAL, dt.date(2026, 10, 10)) == MAKEUP     # Saturday worked (调休)
    assert day_type(CAL, dt.date(2026, 10, 12)) == 0
    hist = simulate(dt.date(2026, 8, 31), 28, cal=CAL)  # 2026-09-25 Mid-Autumn: closed
    end = dt.date(2026, 9, 28)
    days = [end + dt.timedelta(days=i) for i in range(14)]    # to 2026-10-11: National Day week
    fc = forecast_queue(hist, CAL, first=end - dt.timedelta(weeks=8), end=end, days=days, queue="general")
    total = {d: sum(f.calls for f in fc if f.day == d) for d in days}
    assert total[dt.date(2026, 10, 6)] == 0                    # closed like a Sunday
    assert total[dt.date(2026, 10, 10)] > 300                  # a full working day, not a Saturday
    assert total[dt.date(2026, 9, 29)] > 300


def test_too_little_history_names_the_queue_and_the_days():
    hist = simulate(START, 10)
    with pytest.raises(NotEnoughHistory, match=r"queue general: 10 days of history from 2026-11-02.*14 full days"):
        plan(hist, CAL, end=START + dt.timedelta(days=10), days=week(START + dt.timedelta(days=10)),
             target=30.0, goal=0.8)
    with pytest.raises(NotEnoughHistory, match="no inbound queue calls"):
        plan([], CAL, end=START, days=week(START), target=30.0, goal=0.8)


def test_poisson_noise_floor_is_the_exact_mean_absolute_deviation():
    import math

    from callcenter.staffing_plan import poisson_mad

    assert poisson_mad(0) == 0
    assert poisson_mad(1.0) == pytest.approx(2 / math.e)            # E|N-1| = 2/e
    assert poisson_mad(2.0) == pytest.approx(8 * math.exp(-2))      # 2·e^-2·2^3/2!
    assert poisson_mad(400.0) == pytest.approx(math.sqrt(2 * 400 / math.pi), rel=0.01)


def test_golden_week_in_the_history_does_not_bend_the_next_weeks_forecast():
    """History 2026-09-21 .. 10-18 holds Mid-Autumn + National Day (closed) and make-up days."""
    hist = simulate(dt.date(2026, 9, 21), 28, cal=CAL)
    end = dt.date(2026, 10, 19)
    fc = forecast_queue(hist, CAL, first=end - dt.timedelta(weeks=8), end=end, days=week(end), queue="general")
    for d in week(end):
        total = sum(f.calls for f in fc if f.day == d)
        assert total == pytest.approx(400.0 * WEEKLY[d.weekday()], abs=0.06 * 400.0), d
