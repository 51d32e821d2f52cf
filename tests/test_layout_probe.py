"""The layout probe picks what it measured fastest, remembers it per machine, and never waits on the clock.

Every timing here comes from a fake clock that the fake products advance by a set amount, so the
tests hold on any processor and any load.
"""

import json
import subprocess
import sys

import pytest
from test_transformer import tiny_model

from prediction_machine.engine import fastpath, layout_probe
from prediction_machine.engine.layout_probe import Choice


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fake_products(clock: FakeClock, cost_ms):
    """A `run(layout, rows)` whose products take cost_ms(layout, rows) on the fake clock."""
    calls = []

    def run(layout: str, rows: int) -> None:
        calls.append((layout, rows))
        clock.now += cost_ms(layout, rows) / 1000

    return run, calls


def test_the_probe_picks_the_faster_of_two_candidates_at_each_row_count():
    clock = FakeClock()
    # "b" reads faster at one and two rows, "a" from four rows on: the pick must follow the timings.
    run, calls = fake_products(clock, lambda lay, rows: {"a": 10.0 + rows, "b": 4.0 * rows}[lay])
    choice = layout_probe.probe(run, ["a", "b"], rows=(1, 2, 4, 8, 32), clock=clock, repeats=2)
    assert choice.layouts == {1: "b", 2: "b", 4: "a", 8: "a", 32: "a"}
    assert choice.timings_ms[1] == pytest.approx({"a": 11.0, "b": 4.0})
    assert choice.timings_ms[32] == pytest.approx({"a": 42.0, "b": 128.0})
    assert len(calls) == 5 * 2 * (1 + 2)  # a warm-up and two timed runs per candidate and row count
    assert choice.source == "probe" and choice.probe_s == pytest.approx(clock.now)


def test_the_probe_keeps_each_candidates_best_time_not_a_slow_outlier():
    clock = FakeClock()
    slow = iter([50.0, 3.0, 3.0, 3.0])  # "a": a burst of other work lands on its warm-up

    def cost(lay, rows):
        return next(slow) if lay == "a" else 5.0

    run, _ = fake_products(clock, cost)
    choice = layout_probe.probe(run, ["a", "b"], rows=(1,), clock=clock, repeats=3)
    assert choice.layouts == {1: "a"} and choice.timings_ms[1]["a"] == pytest.approx(3.0)


def test_a_product_uses_the_choice_of_the_largest_probed_row_count_below_it():
    choice = Choice({1: "split", 2: "packed", 8: "plain", 32: "packed"})
    assert [choice.pick(n) for n in (1, 2, 3, 7, 8, 31, 32, 512)] == [
        "split", "packed", "packed", "packed", "plain", "plain", "packed", "packed"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PREDICTION_MACHINE_CACHE", str(tmp_path))
    monkeypatch.setattr(layout_probe, "busy", lambda: False)
    monkeypatch.setattr(layout_probe.OtherWork, "cores", lambda self: 0.0)  # the other test worker
    return tmp_path


def test_tune_probes_once_then_later_starts_read_the_stored_choice(cache, monkeypatch):
    decoder = fastpath.FusedDecoder(tiny_model(11))
    measured = Choice({r: "packed" if fastpath.ONEDNN else "split" for r in layout_probe.PROBE_ROWS},
                      {1: {"plain": 2.0, "packed": 1.0}}, "probe", 0.5)
    probes = []
    monkeypatch.setattr(layout_probe, "probe", lambda run, candidates: probes.append(candidates) or measured)
    first = layout_probe.tune(decoder)
    assert first is measured and decoder.choice is measured and len(probes) == 1
    stored = json.loads((cache / layout_probe.CACHE_FILE).read_text())
    (entry,) = stored.values()
    assert entry["processor"] == layout_probe.processor() and entry["torch"] and entry["threads"] >= 1
    assert entry["model"] == decoder.describe_model()

    again = fastpath.FusedDecoder(tiny_model(11))
    second = layout_probe.tune(again)
    assert len(probes) == 1 and second.source == "cache" and second.layouts == measured.layouts
    assert second.timings_ms == measured.timings_ms  # why it was chosen travels with the choice
    assert layout_probe.stored_here()[0]["rows"]["1"]["layout"] == measured.layouts[1]

    assert layout_probe.forget() == 1  # serve --reprobe
    layout_probe.tune(fastpath.FusedDecoder(tiny_model(11)))
    assert len(probes) == 2


def test_another_processor_or_model_shape_gets_its_own_key(monkeypatch):
    shapes = fastpath.FusedDecoder(tiny_model(12)).shapes()
    key = layout_probe.machine_key(shapes)
    assert layout_probe.machine_key(fastpath.FusedDecoder(tiny_model(13)).shapes()) == key  # same shapes
    assert layout_probe.machine_key(shapes[:-1]) != key  # another model
    monkeypatch.setattr(layout_probe, "processor", lambda: "Some Other CPU")
    assert layout_probe.machine_key(shapes) != key


def test_a_probe_on_a_busy_machine_is_kept_until_a_quiet_start_measures_again(cache, monkeypatch):
    probes = []
    monkeypatch.setattr(layout_probe, "probe",
                        lambda run, c: probes.append(1) or Choice({1: "plain"}, {}, "probe", 0.1))
    monkeypatch.setattr(layout_probe, "busy", lambda: True)
    choice = layout_probe.tune(fastpath.FusedDecoder(tiny_model(14)))
    assert choice.busy and layout_probe.stored_here()[0]["busy"]
    assert layout_probe.tune(fastpath.FusedDecoder(tiny_model(14))).source == "cache"  # still busy: reused
    monkeypatch.setattr(layout_probe, "busy", lambda: False)
    quiet = layout_probe.tune(fastpath.FusedDecoder(tiny_model(14)))
    assert len(probes) == 2 and not quiet.busy and not layout_probe.stored_here()[0]["busy"]


def test_a_probe_beside_other_work_is_busy_even_when_the_load_average_has_not_caught_up(cache, monkeypatch):
    probes = []
    monkeypatch.setattr(layout_probe, "probe",
                        lambda run, c: probes.append(1) or Choice({1: "plain"}, {}, "probe", 0.1))
    monkeypatch.setattr(layout_probe, "QUIET_LOOK_S", 0.01)
    monkeypatch.setattr(layout_probe.OtherWork, "cores", lambda self: 1.0)  # another process ran all along
    assert layout_probe.tune(fastpath.FusedDecoder(tiny_model(16))).busy
    assert layout_probe.stored_here()[0]["busy"]
    # The next start sees a load average below the cores, but the other process still at work: no probe
    assert layout_probe.tune(fastpath.FusedDecoder(tiny_model(16))).source == "cache" and len(probes) == 1
    monkeypatch.setattr(layout_probe.OtherWork, "cores", lambda self: 0.0)  # now it has stopped
    assert not layout_probe.tune(fastpath.FusedDecoder(tiny_model(16))).busy and len(probes) == 2


def test_other_work_is_the_machines_cpu_time_less_this_processs_over_the_wall_time(monkeypatch):
    readings = iter([(10.0, 500.0, 3.0), (12.0, 504.5, 6.0)])  # (wall, machine CPU, this process's CPU) s
    monkeypatch.setattr(layout_probe.OtherWork, "now", staticmethod(lambda: next(readings)))
    assert layout_probe.OtherWork().cores() == pytest.approx((4.5 - 3.0) / 2.0)  # 0.75 cores were others'
    monkeypatch.setattr(layout_probe.OtherWork, "now", staticmethod(lambda: (1.0, None, 0.0)))
    assert layout_probe.OtherWork().cores() == 0.0  # no /proc/stat: the load average decides alone


def test_other_work_sees_a_process_that_spins_beside_this_one():
    if layout_probe.machine_cpu_seconds() is None:
        pytest.skip("no /proc/stat on this system")
    spin = "import time\nt = time.perf_counter()\nwhile time.perf_counter() - t < 1.5: pass"
    others = layout_probe.OtherWork()
    subprocess.run([sys.executable, "-c", spin], check=True)  # this process only waits meanwhile
    assert others.cores() > 0.5 > layout_probe.OTHERS_LIMIT


def test_the_real_probe_runs_every_candidate_on_the_decoders_own_matrices(cache):
    decoder = fastpath.FusedDecoder(tiny_model(15))
    assert decoder.choice.source == "default" and set(decoder.choice.layouts.values()) == {"plain"}
    choice = layout_probe.tune(decoder)  # the real clock: which wins is the machine's business
    assert set(choice.layouts) == set(layout_probe.PROBE_ROWS)
    assert all(set(choice.timings_ms[r]) == set(decoder.available_layouts()) for r in choice.layouts)
    kept = {lay for m in decoder.matrices() for lay in m.stored}
    assert kept == set(choice.layouts.values()) - {"plain"}  # the losers' copies are dropped
    status = layout_probe.status(decoder)
    assert status["state"] == "chosen" and status["source"] == "probe"


def test_the_choice_is_shown_by_health_and_reprobe_is_a_serve_option(client, lm):
    from prediction_machine import cli

    assert cli.build_parser().parse_args(["serve", "--reprobe"]).reprobe
    lm.decoder.tuning.join(120)  # the background probe (or the read-back) of the session's model
    shown = client.get("/api/health").json()["layouts"][lm.shown_name]
    assert shown["state"] == "chosen" and shown["source"] in ("probe", "cache")
    assert set(shown["rows"]) == {str(r) for r in layout_probe.PROBE_ROWS}
    assert all(row["layout"] in fastpath.LAYOUTS and row["ms"] for row in shown["rows"].values())


def test_a_one_shot_load_uses_a_stored_choice_but_never_starts_a_probe(cache, monkeypatch):
    probes = []
    measured = Choice({1: "plain"}, {}, "probe")
    monkeypatch.setattr(layout_probe, "probe", lambda run, c: probes.append(1) or measured)
    decoder = fastpath.FusedDecoder(tiny_model(16))
    assert layout_probe.tune(decoder, probe_if_missing=False).source == "default"  # nothing stored: no probe
    assert probes == [] and not (cache / layout_probe.CACHE_FILE).exists()
    layout_probe.tune(decoder)  # a server probes and stores
    assert layout_probe.tune(fastpath.FusedDecoder(tiny_model(16)), probe_if_missing=False).source == "cache"
    assert len(probes) == 1


def test_a_process_that_exits_while_its_probe_runs_exits_cleanly_and_stores_nothing(tmp_path):
    # A thread inside a PyTorch kernel while the interpreter shuts down aborts the process
    # ("terminate called without an active exception", exit 134): the probe must stop first.
    import os
    import subprocess
    import sys

    code = (
        "import prediction_machine as pm; lm = pm.load('shakespeare-base'); "
        "assert lm.decoder.tuning.is_alive(), 'the probe should still be running at exit'"
    )
    env = {**os.environ, "PREDICTION_MACHINE_CACHE": str(tmp_path)}
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert not (
            tmp_path / layout_probe.CACHE_FILE
        ).exists()  # stopped part-way: nothing half-measured kept
