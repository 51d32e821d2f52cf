"""Which weight layout multiplies fastest on this machine: measured at the first load, then remembered.

The fused decoder (fastpath.py) can hold each weight matrix in several layouts (fastpath.LAYOUTS),
and which one reads the weights fastest depends on the processor, not on the code: on an Intel
Xeon with AMX the model's own matrices won up to 2 or 3 rows; on an AMD EPYC (Zen 4) oneDNN's packed
copies won at every row count, and splitting each matrix in two halves, one per core, won at one
row. So nothing here is a tuned constant. For each row count in PROBE_ROWS the probe times every
candidate over all the matrix products of one token (every layer's four, and the unembedding),
with the model's real shapes, and keeps the fastest:

    probe(run, ["plain", "packed"], rows=(1, 32))
    -> Choice(layouts={1: "packed", 32: "packed"}, timings_ms={1: {"plain": 51.0, "packed": 32.1}, ...})

A product of n rows uses the choice of the largest probed row count <= n (3 rows: the choice
for 2). The decision is stored in the cache folder, keyed by the processor, its core count, the
torch version and the model's matrix shapes, so later starts read it instead of probing.
Serving never waits for the probe: the decoder starts on the plain layout (it needs no copy)
and switches when `tune_in_background` has packed and measured (a few seconds on 2 cores).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import platform
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

PROBE_ROWS = (1, 2, 4, 8, 32)  # one stream, a few, a small class, a full batch (and every prompt's prefill)
REPEATS = 3  # timed runs per candidate and row count, after one untimed warm-up; the minimum is kept
DEFAULT_LAYOUT = "plain"  # before a probe: the model's own matrices, which need no copy and no packing
CACHE_FILE = "layouts.json"


@dataclass
class Choice:
    """The layout for each probed row count, and why: each candidate's best time in milliseconds."""

    layouts: dict[int, str]  # probed row count -> layout name
    timings_ms: dict[int, dict[str, float]] = field(default_factory=dict)  # row count -> layout -> ms
    source: str = "default"  # "default" (nothing measured yet), "probe" (measured now) or "cache" (read back)
    probe_s: float | None = None  # how long the probe took, when it ran in this process
    busy: bool = False  # the machine had more work than cores while probing: timings are noisy

    @classmethod
    def default(cls) -> Choice:
        return cls({rows: DEFAULT_LAYOUT for rows in PROBE_ROWS})

    def pick(self, rows: int) -> str:
        """The layout for a product of `rows` rows: that of the largest probed count <= rows.

        >>> Choice({1: "split", 2: "packed", 32: "packed"}).pick(3)
        'packed'
        """
        probed = [r for r in sorted(self.layouts) if r <= rows] or [min(self.layouts)]
        return self.layouts[probed[-1]]

    def describe(self) -> dict:
        """What the CLI, /api/health and the benchmark show: the pick per row count and its timings."""
        return {
            "source": self.source,
            "probe_s": None if self.probe_s is None else round(self.probe_s, 2),
            "busy": self.busy,
            "rows": {str(r): {"layout": self.layouts[r],
                              "ms": {k: round(v, 2) for k, v in self.timings_ms.get(r, {}).items()}}
                     for r in sorted(self.layouts)},
        }

    def to_json(self) -> dict:
        return {"layouts": {str(r): v for r, v in self.layouts.items()},
                "timings_ms": {str(r): v for r, v in self.timings_ms.items()}, "busy": self.busy}

    @classmethod
    def from_json(cls, data: dict, source: str = "cache") -> Choice:
        layouts = {int(r): v for r, v in data["layouts"].items()}
        timings = {int(r): v for r, v in data.get("timings_ms", {}).items()}
        return cls(layouts, timings, source, busy=bool(data.get("busy")))


# ----------------------------------------------------------------------------- the measurement


def probe(run: Callable[[str, int], object], candidates: Iterable[str], rows: Iterable[int] = PROBE_ROWS,
          clock: Callable[[], float] = time.perf_counter, repeats: int = REPEATS) -> Choice:
    """Time `run(layout, rows)` for every candidate at every row count; keep the fastest of each.

    Candidates take turns within each repeat (A, B, A, B, ...), and each keeps its minimum: on a
    shared machine a burst of other work slows whichever run it lands on, never speeds one up.
    `clock` is injectable so a test can make the timings differ on purpose.
    """
    candidates, t_start = list(candidates), clock()
    layouts, timings = {}, {}
    for r in rows:
        best = {c: float("inf") for c in candidates}
        for c in candidates:
            run(c, r)  # warm-up: oneDNN builds its kernel for a new shape on the first call
        for _ in range(repeats):
            for c in candidates:
                t0 = clock()
                run(c, r)
                best[c] = min(best[c], clock() - t0)
        timings[r] = {c: t * 1000 for c, t in best.items()}
        layouts[r] = min(candidates, key=lambda c: best[c])  # ties: the earlier candidate
    return Choice(layouts, timings, "probe", clock() - t_start)


# ----------------------------------------------------------------------------- remembered per machine


def processor() -> str:
    """The processor's model name (platform.processor() is empty on most Linux systems)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """What a probe's result holds for: the processor, its cores, torch's threads and version."""
    return {"processor": processor(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__}


def machine_key(shapes: Iterable[tuple[int, int]]) -> str:
    """This machine and the model's matrix shapes: a probe's decision holds for exactly these."""
    what = [machine(), sorted(set(shapes))]
    return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:16]


def busy() -> bool:
    """More runnable work than cores: timings then measure the other work too (os.getloadavg, 1 min)."""
    try:
        return os.getloadavg()[0] > (os.cpu_count() or 1)
    except OSError:  # not on this system
        return False


OTHERS_LIMIT = 0.2  # cores that other processes may keep busy, on average, before a probe counts as busy


def machine_cpu_seconds() -> float | None:
    """CPU seconds every process on this machine has run since boot (Linux's /proc/stat), or None.

    Time the hypervisor gave another machine (steal) counts too: it was taken from this one."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields)
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class OtherWork:
    """How many cores other processes kept busy from its creation until cores() is asked.

    The load average alone misses work that starts with the probe: it averages the last minute,
    so a test suite that starts a second worker beside the first server's probe still reads as a
    quiet machine. Whatever the machine ran beyond this process's own CPU time was someone else's.
    """

    def __init__(self):
        self.start = self.now()

    @staticmethod
    def now() -> tuple[float, float | None, float]:
        return time.perf_counter(), machine_cpu_seconds(), sum(os.times()[:2])  # wall, machine, this process

    def cores(self) -> float:
        (wall0, machine0, ours0), (wall1, machine1, ours1) = self.start, self.now()
        if machine0 is None or machine1 is None or wall1 <= wall0:
            return 0.0  # not measurable here: the load average decides alone
        return max(0.0, (machine1 - machine0) - (ours1 - ours0)) / (wall1 - wall0)


QUIET_LOOK_S = 0.25  # how long a start watches other processes before it measures a busy choice again


def quiet() -> bool:
    """No more work than cores (the load average) and, over a short look, no other process at work."""
    if busy():
        return False
    others = OtherWork()
    time.sleep(QUIET_LOOK_S)
    return others.cores() <= OTHERS_LIMIT


def cache_path() -> Path:
    from prediction_machine.model.weights import cache_dir

    return cache_dir() / CACHE_FILE


def read_cached(key: str) -> Choice | None:
    try:
        entry = json.loads(cache_path().read_text()).get(key)
        return Choice.from_json(entry) if entry else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # missing or foreign: probe again
        return None


def read_all() -> dict:
    try:
        known = json.loads(cache_path().read_text())
        return known if isinstance(known, dict) else {}
    except (OSError, ValueError):
        return {}


def store(key: str, choice: Choice, model: str) -> None:
    """Add this machine's decision to the cache file (other keys, e.g. other models, stay)."""
    from prediction_machine.model.weights import atomic_write_bytes

    known = read_all()
    known[key] = {**choice.to_json(), **machine(), "model": model}
    atomic_write_bytes(cache_path(), lambda tmp: Path(tmp).write_text(json.dumps(known, indent=1)))


def stored_here() -> list[dict]:
    """The decisions stored for this machine (any model): what `prediction-machine models --json` lists."""
    here = machine()
    return [{"model": e.get("model"), **Choice.from_json(e).describe()}
            for e in read_all().values() if all(e.get(k) == v for k, v in here.items())]


def forget() -> int:
    """Drop this machine's decisions (`serve --reprobe`): the next load probes again. Returns how many."""
    from prediction_machine.model.weights import atomic_write_bytes

    here, known = machine(), read_all()
    keep = {k: e for k, e in known.items() if not all(e.get(f) == v for f, v in here.items())}
    if len(keep) != len(known):
        atomic_write_bytes(cache_path(), lambda tmp: Path(tmp).write_text(json.dumps(keep, indent=1)))
    return len(known) - len(keep)


# ----------------------------------------------------------------------------- the decoder's side


class ProbeStopped(Exception):
    """The process is exiting: the probe stops between two timed runs and stores nothing."""


_exiting = threading.Event()
_running: list[threading.Thread] = []  # background probes of this process


@atexit.register
def _finish_before_exit() -> None:
    """Let a background probe stop between two runs before the interpreter shuts down.

    A thread still inside a PyTorch kernel while the interpreter tears down aborts the whole
    process ("terminate called without an active exception"), so a command that loads a model
    and exits at once would fail. One timed run is the longest this waits.
    """
    _exiting.set()
    for thread in list(_running):
        thread.join()


def tune(decoder, reprobe: bool = False, probe_if_missing: bool = True) -> Choice:
    """Give a fastpath.FusedDecoder its layouts: read back for this machine, or probed and stored.

    Only the layouts chosen are kept; the others' copies are dropped. A choice probed while the
    machine was busy (a load average above its cores, or other processes using more than
    OTHERS_LIMIT cores during the probe) is marked so, and measured again at the first start
    that finds the machine quiet; until then it is used (probing at every start of a busy
    machine, e.g. the test suite's many servers, would only make it busier). With
    `probe_if_missing` False (a one-shot command), a machine with nothing stored keeps the
    default: a probe is for a server.
    """
    key = machine_key(decoder.shapes())
    choice = None if reprobe else read_cached(key)
    may_probe = probe_if_missing or reprobe
    stale = may_probe and choice is not None and choice.busy and quiet()  # quiet() looks for a moment
    usable = choice is not None and set(choice.layouts.values()) <= set(decoder.available_layouts())
    if (stale or not usable) and may_probe:
        candidates = decoder.available_layouts()
        for layout in candidates:
            if _exiting.is_set():
                raise ProbeStopped
            decoder.prepare(layout)

        def run(layout: str, rows: int):
            if _exiting.is_set():
                raise ProbeStopped
            return decoder.one_token_products(layout, rows)

        was_busy, others = busy(), OtherWork()
        choice = probe(run, candidates)
        choice.busy = was_busy or busy() or others.cores() > OTHERS_LIMIT
        store(key, choice, decoder.describe_model())
    elif not usable:
        return decoder.choice  # nothing stored for this machine, and no probe asked: the default stays
    decoder.use(choice)
    return choice


def tune_in_background(decoder, reprobe: bool = False, probe_if_missing: bool = True) -> threading.Thread:
    """tune() on a daemon thread: generation runs on the decoder's current layouts until it switches."""

    def work() -> None:
        try:
            tune(decoder, reprobe, probe_if_missing)
        except ProbeStopped:
            pass  # the process is exiting: nothing was stored, the next start probes again
        except Exception as e:  # noqa: BLE001 - a failed probe leaves the safe default in place, and says why
            decoder.tuning_error = f"{type(e).__name__}: {e}"
        finally:
            _running.remove(threading.current_thread())

    thread = threading.Thread(target=work, name="pm-layout-probe", daemon=True)
    decoder.tuning = thread
    _running.append(thread)
    thread.start()
    return thread


def status(decoder) -> dict:
    """A decoder's layouts as /api/health shows them: probing (on the default) or chosen, and why."""
    thread = getattr(decoder, "tuning", None)
    state = "probing" if thread is not None and thread.is_alive() else "chosen"
    if getattr(decoder, "tuning_error", None):
        state = "default (probe failed: " + decoder.tuning_error + ")"
    return {"state": state, **decoder.choice.describe()}

