from __future__ import annotations

import io
import json
import math
import random
from pathlib import Path

import pytest

from vigil.detect.anomaly import DetectorConfig, StreamingDetector
from vigil.detect.detect_cli import DetectInputError, parse_timestamp, run_detect

ALERT = 0.52  # about the global threshold NAB's sweep picks for this detector
STEP = 300.0  # 5-minute points, like most NAB series
T0 = 1_396_310_400.0  # 2014-04-01 00:00:00 UTC


def noisy(n: int, seed: int = 7, level: float = 50.0, sigma: float = 2.0) -> list[float]:
    rng = random.Random(seed)
    return [level + rng.gauss(0.0, sigma) for _ in range(n)]


def score_all(values: list[float], config: DetectorConfig | None = None) -> list[float]:
    det = StreamingDetector(config)
    return [det.update(T0 + i * STEP, v) for i, v in enumerate(values)]


def test_scores_are_in_unit_interval_for_awkward_series() -> None:
    rng = random.Random(1)
    series = {
        "constant": [3.0] * 800,
        "zeros_then_spikes": [0.0] * 400 + [1e9 if i % 50 == 0 else 0.0 for i in range(400)],
        "negative_heavy_tail": [-abs(rng.paretovariate(1.2)) for _ in range(800)],
        "tiny": [1e-12 * rng.random() for _ in range(800)],
        "noisy": noisy(800),
    }
    for name, values in series.items():
        scores = score_all(values)
        assert all(0.0 <= s <= 1.0 and math.isfinite(s) for s in scores), name


def test_warmup_scores_zero() -> None:
    scores = score_all(noisy(400), DetectorConfig(warmup=150))
    assert scores[:150] == [0.0] * 150


def test_steady_noisy_series_scores_low() -> None:
    scores = score_all(noisy(3000))[300:]
    # iid noise still crosses the threshold now and then, when a point is the most extreme of the
    # last `window` (NAB's standard profile makes a false alarm far cheaper than a miss)
    # or when it is a new extreme of everything seen (the new-extreme rule scores it 1)
    assert sum(s > ALERT for s in scores) <= 0.001 * len(scores)
    assert sum(s == 1.0 for s in scores) <= 1
    assert max(s for s in scores if s < 1.0) < 0.6
    assert sum(scores) / len(scores) < 0.1


LIKELIHOOD_ONLY = DetectorConfig(extreme_tolerance=0.0)  # without the new-extreme rule (tested below)


def test_spike_scores_high_at_the_spike() -> None:
    values = noisy(1500)
    values[1200] = 90.0  # 20 sigma
    scores = score_all(values, LIKELIHOOD_ONLY)
    background = max(scores[300:1200])
    at_spike = max(scores[1200:1203])  # the likelihood stage averages the last 3 points
    assert at_spike > ALERT
    assert at_spike == max(scores)
    assert background < ALERT


def test_level_shift_scores_high_right_after_the_change_and_then_settles() -> None:
    values = noisy(1500) + noisy(1500, seed=8, level=70.0)
    scores = score_all(values, LIKELIHOOD_ONLY)
    background = max(scores[300:1500])
    onset = max(scores[1500:1510])
    assert onset > ALERT
    assert onset > background + 0.05
    assert onset == max(scores)
    # One change, one alert: the new level is soon normal again (iid noise still crosses the
    # threshold now and then, when a point is the most extreme of the last `window`).
    after = scores[1600:]
    assert sum(s > ALERT for s in after) <= 0.002 * len(after)
    assert sum(after) / len(after) < 0.1


def test_a_daily_spike_that_drifts_is_learned_but_a_higher_one_elsewhere_is_not() -> None:
    rng = random.Random(3)
    values = noisy(288 * 8, sigma=0.5)
    for day in range(8):
        values[day * 288 + 100 + rng.randint(-10, 10)] = 80.0  # same hour, give or take 50 minutes
    values[7 * 288 + 200] = 120.0  # higher, at another hour
    scores = score_all(values)
    daily = [max(scores[d * 288 + 85 : d * 288 + 116]) for d in range(4, 7)]
    assert max(daily) < ALERT
    assert scores[7 * 288 + 200] > ALERT
    single = score_all(values, DetectorConfig(recur_days=0))
    assert max(max(single[d * 288 + 85 : d * 288 + 116]) for d in range(4, 7)) > ALERT


def test_score_at_row_i_depends_only_on_rows_up_to_i() -> None:
    values = noisy(1200)
    values[700] = 120.0
    values[900:] = [v + 15.0 for v in values[900:]]
    full = score_all(values)
    for cut in (1, 150, 701, 950):
        assert score_all(values[:cut]) == full[:cut]


def test_state_round_trip_gives_identical_subsequent_scores() -> None:
    values = noisy(1500)
    values[1100] = 95.0
    days = [T0 + i * STEP for i in range(len(values))]
    reference = StreamingDetector()
    expected = [reference.update(t, v) for t, v in zip(days, values, strict=True)]

    first = StreamingDetector()
    for t, v in zip(days[:1000], values[:1000], strict=True):
        first.update(t, v)
    saved = json.loads(json.dumps(first.state()))  # must survive JSON
    restored = StreamingDetector.from_state(saved)
    resumed = [restored.update(t, v) for t, v in zip(days[1000:], values[1000:], strict=True)]
    assert resumed == expected[1000:]
    assert restored.state() == reference.state()


def test_from_state_rejects_unknown_version() -> None:
    state = StreamingDetector().state()
    state["version"] = 999
    with pytest.raises(ValueError, match="version"):
        StreamingDetector.from_state(state)


def test_state_of_the_single_scale_detector_is_rejected_by_version() -> None:
    state = StreamingDetector().state()
    state["version"] = 1
    del state["scales"]
    with pytest.raises(ValueError, match="version"):
        StreamingDetector.from_state(state)


def test_non_finite_value_is_rejected() -> None:
    with pytest.raises(ValueError):
        StreamingDetector().update(T0, math.nan)


def test_invalid_config_is_rejected() -> None:
    with pytest.raises(ValueError):
        DetectorConfig(window=0)


def test_parse_timestamp_formats_agree() -> None:
    expected = 1_396_310_400.0
    assert parse_timestamp("2014-04-01 00:00:00") == expected
    assert parse_timestamp("2014-04-01T00:00:00Z") == expected
    assert parse_timestamp("2014-04-01T02:00:00+02:00") == expected
    assert parse_timestamp("1396310400") == expected
    assert parse_timestamp("1396310400.5") == expected + 0.5
    with pytest.raises(ValueError):
        parse_timestamp("yesterday")


def write_csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "series.csv"
    path.write_text(text)
    return path


def test_run_detect_writes_scores_and_echoes_rows(tmp_path: Path) -> None:
    values = noisy(400)
    rows = [f"2014-04-01 {i // 12:02d}:{(i % 12) * 5:02d}:00,{v}" for i, v in enumerate(values[:288])]
    rows += [f"{1396310400 + i * 300},{v}" for i, v in enumerate(values[288:], start=288)]
    path = write_csv(tmp_path, "timestamp,value\n" + "\n".join(rows) + "\n")
    out = io.StringIO()
    run_detect(path, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "timestamp,value,anomaly_score"
    assert len(lines) == 1 + len(rows)
    for line, row in zip(lines[1:], rows, strict=True):
        ts, value, score = line.split(",")
        assert f"{ts},{value}" == row
        assert 0.0 <= float(score) <= 1.0
    # Same scores as the detector fed directly.
    expected = score_all(values)
    got = [float(line.rsplit(",", 1)[1]) for line in lines[1:]]
    assert got == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("", 1, "empty"),
        ("time,val\n2014-04-01 00:00:00,1\n", 1, "header"),
        ("timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,abc\n", 3, "not a number"),
        ("timestamp,value\n2014-04-01 00:00:00,1\nnot-a-time,2\n", 3, "timestamp"),
        ("timestamp,value\n2014-04-01 00:00:00,1,7\n", 2, "2 fields"),
        ("timestamp,value\n2014-04-01 00:00:00,nan\n", 2, "finite"),
        ("timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,\n", 3, "not a number"),
        ("timestamp,value\n2014-04-01 00:00:00,1\n,2\n", 3, "empty timestamp"),
    ],
)
def test_run_detect_malformed_input_names_the_line(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    path = write_csv(tmp_path, text)
    with pytest.raises(DetectInputError) as err:
        run_detect(path, io.StringIO())
    assert isinstance(err.value, ValueError)
    assert err.value.line == line
    assert f"line {line}" in str(err.value)
    assert fragment in str(err.value)


def test_run_detect_scores_every_row_in_arrival_order_whatever_the_timestamps_do(tmp_path: Path) -> None:
    values = noisy(600)
    times = [T0 + i * STEP for i in range(600)]
    times[300] = times[250]  # a clock stepping back 50 points
    times[301] = times[300]  # a duplicate of that
    times[450:] = [t + 7 * 86400 for t in times[450:]]  # a week missing
    values[500] = 500.0
    rows = [f"{t:.0f},{v}" for t, v in zip(times, values, strict=True)]
    path = write_csv(tmp_path, "timestamp,value\n" + "\n".join(rows) + "\n")
    out = io.StringIO()
    run_detect(path, out)
    lines = out.getvalue().splitlines()[1:]
    assert [line.rsplit(",", 1)[0] for line in lines] == rows
    det = StreamingDetector()
    expected = [det.update(t, v) for t, v in zip(times, values, strict=True)]
    got = [float(line.rsplit(",", 1)[1]) for line in lines]
    assert got == pytest.approx(expected, abs=1e-6)
    assert got[500] > ALERT


def test_run_detect_skips_blank_lines(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "timestamp,value\n2014-04-01 00:00:00,1\n\n2014-04-01 00:05:00,2\n")
    out = io.StringIO()
    run_detect(path, out)
    assert out.getvalue().splitlines()[1:] == [
        "2014-04-01 00:00:00,1,0.000000",
        "2014-04-01 00:05:00,2,0.000000",
    ]


@pytest.mark.parametrize("order", ["reversed", "all_equal"])
def test_run_detect_scores_series_whose_clock_never_steps_forward(tmp_path: Path, order: str) -> None:
    values = [50.0 + (i * 7) % 10 for i in range(500)]  # no new extreme but the spike
    values[400] = 500.0
    times = [T0 - i * STEP for i in range(500)] if order == "reversed" else [T0] * 500
    rows = [f"{t:.0f},{v}" for t, v in zip(times, values, strict=True)]
    path = write_csv(tmp_path, "timestamp,value\n" + "\n".join(rows) + "\n")
    out = io.StringIO()
    run_detect(path, out)
    lines = out.getvalue().splitlines()[1:]
    assert len(lines) == len(rows)
    got = [float(line.rsplit(",", 1)[1]) for line in lines]
    assert got[400] > ALERT
    assert max(got[:400]) < ALERT


def test_a_value_beyond_the_range_seen_so_far_scores_one() -> None:
    rng = random.Random(3)
    # a spiky series: its likelihood stages learn that spikes to about 100 are ordinary
    values = [100.0 + rng.gauss(0, 2) if i % 40 == 0 else 10.0 + rng.gauss(0, 1) for i in range(1200)]
    values[1000] = 100.0  # another ordinary spike
    values[1100] = 130.0  # a spike to a height never seen
    scores = score_all(values)
    assert scores[1100] == 1.0
    assert scores[1000] < 1.0
    assert max(scores[200:1100]) < 1.0
    off = score_all(values, DetectorConfig(extreme_tolerance=0.0))
    assert off[1100] < 1.0


def test_a_new_extreme_within_the_tolerance_or_in_the_warmup_does_not_score_one() -> None:
    values = [10.0 + (i % 7) for i in range(400)]  # range 10..16
    values[50] = 40.0  # in the warmup: widens the range to 10..40 without scoring
    values[300] = 41.0  # beyond 40, but by less than 5 % of the range
    scores = score_all(values)
    assert scores[50] == 0.0
    assert scores[300] < 1.0


def test_state_saved_before_the_new_extreme_rule_still_loads() -> None:
    det = StreamingDetector()
    for i, v in enumerate(noisy(300)):
        det.update(T0 + i * STEP, v)
    state = json.loads(json.dumps(det.state()))
    del state["range"], state["config"]["extreme_tolerance"]
    restored = StreamingDetector.from_state(state)
    assert restored.lowest is None
    assert 0.0 <= restored.update(T0 + 300 * STEP, 50.0) <= 1.0
