"""1,000 deploys over 20 workers on a virtual clock: the real ledger, retry policy and emulator windows.

See ``devtools/pacing_sim.py`` for what is real and what is simulated (time, network, a Variable store
with latency whose writes now and then stall past the settle delay, worker clocks up to 90 s off). Runs
in seconds; ``benchmarks/pacing.py`` records the same figures.
"""

from __future__ import annotations

from devtools.pacing_sim import SimSettings, simulate


def test_a_thousand_paced_deploys_over_twenty_workers_stay_inside_the_bounds() -> None:
    result = simulate(SimSettings(deploys=1000, workers=20)).summary()
    assert result["tasks_succeeded"] == result["posts_accepted"] == result["deploys_accepted_once"] == 1000, result
    assert result["tasks_failed"] == 0, result
    assert result["posts_sent"] == 1000 + result["posts_rate_limited"], result  # only refused POSTs re-sent
    assert result["post_429_share"] <= 0.10, result
    assert result["floor_s"] == 99 * 60.0, result  # 1,000 POSTs at 10 a minute
    assert result["ratio"] <= 1.2, result


def test_without_stalled_writes_the_ledger_lets_no_429_through_despite_skewed_clocks() -> None:
    result = simulate(SimSettings(deploys=300, workers=20, stalled_write_share=0.0, skews=(0.0, 90.0, -90.0)))
    summary = result.summary()
    assert summary["posts_accepted"] == summary["deploys_accepted_once"] == 300, summary
    assert summary["requests_rate_limited"] == 0, summary  # GETs included
    assert summary["ratio"] <= 1.2, summary


def test_the_same_fleet_unpaced_collects_far_more_than_ten_percent_429s() -> None:
    """The bound above is not met by accident: without the ledger the fleet hammers ODC."""
    result = simulate(SimSettings(deploys=300, workers=20, paced=False)).summary()
    assert result["post_429_share"] > 0.10, result
