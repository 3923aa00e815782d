"""The staffing plan as the reports page shows it: per day, one day's half hours, the past week
per day and queue (pure; the downloads keep every half hour)."""
from __future__ import annotations

from callcenter.report_tables import plan_day_table, table
from callcenter.staffing_plan import day_grid, day_totals, past_totals

from .test_staffing_plan_io import TZ


def _row(queue, day, time, calls, agents):
    return {"queue": queue, "day": day, "time": time, "forecast_calls": calls, "aht_seconds": 180.0,
            "agents_needed": agents, "expected_service_level": 0.8}


ROWS = [_row("a", "2026-12-01", "08:00", 4.0, 2), _row("b", "2026-12-01", "08:00", 2.5, 1),
        _row("a", "2026-12-01", "08:30", 6.0, 3), _row("b", "2026-12-01", "08:30", 0.2, 0),
        _row("a", "2026-12-01", "02:00", 0.0, 0), _row("b", "2026-12-01", "02:00", 0.0, 0),
        _row("a", "2026-12-02", "08:00", 0.0, 0), _row("b", "2026-12-02", "08:00", 0.0, 0)]


def test_day_totals_sum_the_calls_and_find_the_busiest_half_hour_over_all_queues():
    first, quiet = day_totals(ROWS)
    assert first == {"day": "2026-12-01", "forecast_calls": 12.7, "agents_peak": 3, "peak_time": "08:00",
                     "agent_hours": 3.0}  # 08:00 and 08:30 both need 3 (2+1, 3+0): the first; (2+1+3) / 2
    assert quiet == {"day": "2026-12-02", "forecast_calls": 0.0, "agents_peak": 0, "peak_time": None,
                     "agent_hours": 0.0}
    tb = table("staffing-plan-days", {"rows": [first, quiet]}, "en", TZ)
    assert [c.text for c in tb.rows[0]] == ["2026-12-01", "12.7", "3", "08:00–08:30", "3.0"]
    assert tb.rows[1][3].text == "—"


def test_one_day_is_a_row_per_half_hour_that_needs_agents_with_each_queue_and_all():
    queues, rows = day_grid(ROWS, "2026-12-01")
    assert queues == ["a", "b"]
    assert rows == [{"time": "08:00", "a": 2, "b": 1, "agents_needed": 3},
                    {"time": "08:30", "a": 3, "b": 0, "agents_needed": 3}]  # 02:00 needs nobody
    assert day_grid(ROWS, "2026-12-02") == (["a", "b"], [])
    tb = plan_day_table(queues, rows, "zh", TZ)
    assert tb.headings == ["时间", "a", "b", "全部队列"]
    assert [[c.text for c in r] for r in tb.rows] == [["08:00–08:30", "2", "1", "3"], ["08:30–09:00", "3", "0", "3"]]


def test_the_past_week_per_day_and_queue_sums_calls_and_keeps_the_peaks():
    past = [{"queue": "a", "day": "2026-11-24", "time": t, "actual_calls": n, "forecast_calls": f,
             "agents_needed_forecast": af, "agents_needed_actual": aa, "agents_seen_answering": seen}
            for t, n, f, af, aa, seen in (("08:00", 3, 2.5, 2, 2, 1), ("08:30", 5, 4.25, 3, 4, 2))]
    assert past_totals(past) == [{"day": "2026-11-24", "queue": "a", "actual_calls": 8, "forecast_calls": 6.8,
                                  "agents_needed_forecast": 3, "agents_needed_actual": 4,
                                  "agents_seen_answering": 2}]
