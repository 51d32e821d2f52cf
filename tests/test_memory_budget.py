"""Memory bounded by design: the worst case is computed, printed, and never passed.

The batch cache grows only to what its rows need (rows and positions separately), every
request reserves its worst case before it starts, and requests that would pass the budget
wait their turn instead of taking the server down.
"""

import re
import threading
import time

import httpx
import pytest
from conftest import read_sse, start_server, wait_until
from test_batching import GREEDY
from test_transformer import tiny_model

from prediction_machine.config import SMOLLM2_135M
from prediction_machine.engine import memory
from prediction_machine.engine.batching import Batcher
from prediction_machine.engine.server_batcher import server_worst_case
from prediction_machine.web.settings import ServerSettings


def test_kv_bytes_per_position_of_smollm():
    assert memory.kv_bytes(SMOLLM2_135M, 1) == 30 * 2 * 3 * 64 * 4 == 46_080
    # 1,024 prompt + 512 continuation + 512 new (+ one growth step), plus the prompt's rows while read.
    assert memory.request_bytes(SMOLLM2_135M, 1536, 512) == 46_080 * (2048 + 64 + 1536)


def test_default_worst_case_fits_the_default_budget():
    # about a loaded server
    plan = server_worst_case(SMOLLM2_135M, ServerSettings(), base_bytes=1200 * memory.MB)
    assert plan.max_running == 4 and plan.total < plan.budget == 4096 * memory.MB
    assert plan.kv_budget >= 4 * plan.per_request  # four longest requests run at once, none has to wait
    assert "within the --max-memory budget of 4,096 MB" in plan.describe()
    tight = server_worst_case(SMOLLM2_135M, ServerSettings(max_memory_mb=1000), base_bytes=1200 * memory.MB)
    assert tight.kv_budget == tight.per_request and "over" in tight.describe()  # one at a time, never refused


def test_requests_beyond_the_budget_wait_their_turn_and_all_finish():
    model = tiny_model(41)
    need = memory.request_bytes(model.cfg, 3, 30)
    batcher = Batcher(model, max_rows=8, max_kv_bytes=2 * need + need // 2)  # room for two at a time
    seen = []
    reqs = [batcher.submit([1, 2, 3], GREEDY, 30) for _ in range(5)]
    while any(r.reserved or not r.ids[3:] for r in reqs):
        seen.append(batcher.reserved)
        time.sleep(0.001)
    for r in reqs:
        steps = []
        while (item := r.out.get(timeout=30)) is not None:
            steps.append(item)
        assert len(steps) == 30
    assert max(seen) <= 2 * need  # never more than two reservations at once
    with pytest.raises(ValueError, match="memory budget"):
        # could never fit: refused at once
        Batcher(model, max_kv_bytes=need // 2).submit([1, 2, 3], GREEDY, 30)


@pytest.mark.slow
def test_longest_request_stays_within_the_printed_worst_case():
    psutil = pytest.importorskip("psutil")
    # A server whose longest answer is 64 tokens: the same plan and the same check as at the default 512,
    # with 448 fewer decode steps to wait for (about 80 s of the suite's time)
    new_tokens = 64
    with start_server("--max-running", "4", "--precision", "fp32-fused",
                      env={"PREDICTION_MACHINE_MAX_NEW_TOKENS": str(new_tokens)}) as server:
        # printed once the model is ready, just after health says so
        wait_until(lambda: "memory worst case" in server.output(), 60, "the printed memory plan", poll=0.2)
        line = next(line for line in server.output().splitlines() if "memory worst case" in line)
        total, budget = (float(m.replace(",", "")) for m in
                         re.search(r"worst case ([\d,]+) MB.* budget of ([\d,]+) MB", line).groups())
        assert total <= budget, line
        peak, stop = [0], threading.Event()

        def watch():
            p = psutil.Process(server.proc.pid)
            while not stop.is_set():
                peak[0] = max(peak[0], p.memory_info().rss)
                time.sleep(0.02)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        limits = ServerSettings(max_new_tokens=new_tokens)
        body = {"prompt": " the" * 1000, "chat": False, "temperature": 0,
                "continuation": [279] * limits.max_new_tokens, "max_new_tokens": limits.max_new_tokens}
        r = httpx.post(f"{server.url}/api/generate", json=body, timeout=600)
        stop.set()
        watcher.join()
        done = [d for e, d in read_sse(r) if e == "done"]
        assert done and done[0]["tokens"] == limits.max_new_tokens, r.text[-500:]
        print(f"peak RSS {peak[0] / memory.MB:.0f} MB; printed worst case {total:.0f} MB; "
              f"budget {budget:.0f} MB")
        assert peak[0] / memory.MB <= total
