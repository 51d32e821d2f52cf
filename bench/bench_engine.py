"""Our engine against transformers on the same weights, in the same run: decode, prefill, trace, start-up.

    .venv/bin/python bench/bench_engine.py            # about 3-5 minutes on 2 cores
    .venv/bin/python bench/bench_engine.py --quick    # fewer repeats, for a smoke test

Every comparison runs both sides in this process, interleaved (A, B, A, B, ...), and
reports medians, and as the ratio the median over rounds of ours / reference measured
side by side: absolute times on a shared 2-core machine drift with whatever else runs.

- decode: tokens/s of greedy generation *with* the per-step top-k table the page shows, against
  the machine's fp32 bandwidth bound (bench_layouts.py), from reads just before and after each
  decode run, and against transformers.
  Ours is generation.generate (which builds a predict.Prediction every step); transformers'
  is `generate` with a logits processor that takes softmax + top-10 every step.
- prefill: one forward pass over a 100-token prompt into an empty KV cache, last logits only.
- trace: tracing.trace (all attention maps, residuals, embeddings) + the logit lens at the
  last position, against a plain forward pass of the same 32-token sentence.
- serve: `prediction-machine serve` until /api/health says the model is ready, first with an empty cache
  folder (dequantizes the GGUF), then warm; and the server's resident memory at idle.
- serving pieces for a classroom, each against the way it was done before, same results:
  sampling 32 rows in one batched call (generation.choose) vs one row at a time; 8 newcomers'
  prompts prefilled in one pass vs one after another; a chat prompt whose system prompt comes
  from the prefix cache vs read in full.

transformers gets the very same tensors: a LlamaForCausalLM is built around our state dict
(Hugging Face uses the same "rotate half" RoPE layout), and the run checks that logits and
greedy tokens agree before timing anything. tests/test_reference.py separately checks our
GGUF dequantization against transformers' own GGUF loader.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prediction_machine.config import DEFAULT_PRECISION  # noqa: E402
from prediction_machine.engine import fastpath, layout_probe  # noqa: E402
from prediction_machine.engine.allocator import keep_freed_memory  # noqa: E402
from prediction_machine.engine.prefix_cache import PrefixCache  # noqa: E402
from prediction_machine.inference.generation import choose, generate  # noqa: E402
from prediction_machine.inference.prediction import predict  # noqa: E402
from prediction_machine.inference.sampling import SamplingParams, distribution, draw, make_generator  # noqa: E402
from prediction_machine.model import models, tracing  # noqa: E402
from prediction_machine.model.transformer import KVCache  # noqa: E402
from prediction_machine.model.weights import HF_NAMES  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ modules
from bench_layouts import read_bandwidths, weight_bytes  # noqa: E402

keep_freed_memory()  # as the CLI and the server run; ours and transformers share this process, so both get it

GREEDY = SamplingParams(temperature=0)
PROMPT = "What is the capital of France? Answer in one long, careful paragraph."
SENTENCE = ("The quick brown fox jumps over the lazy dog because it wanted to see "
            "what was on the other side of it.")


def row(benchmark, ours, reference, unit, note="", ratio=None):
    if ratio is None and ours is not None and reference:
        ratio = ours / reference
    return {"benchmark": benchmark, "ours": ours, "reference": reference, "ratio": ratio, "unit": unit,
            "note": note}


# ----------------------------------------------------------------------------- the transformers side


def hf_twin(lm):
    """A transformers LlamaForCausalLM holding our tensors (no copy), checked to compute the same."""
    import transformers

    c = lm.config
    cfg = transformers.LlamaConfig(
        vocab_size=c.vocab_size, hidden_size=c.d_model, intermediate_size=c.d_ff,
        num_hidden_layers=c.n_layers, num_attention_heads=c.n_heads, num_key_value_heads=c.n_kv_heads,
        max_position_embeddings=c.max_seq_len,
        rope_theta=c.rope_base, rms_norm_eps=c.norm_eps, tie_word_embeddings=c.tie_embeddings,
        eos_token_id=None,  # never stop early: both sides generate exactly n tokens
    )
    with torch.device("meta"):
        hf = transformers.LlamaForCausalLM(cfg)
    ours_to_hf = {v: k for k, v in HF_NAMES.items()}
    state = {}
    for name, w in lm.model.state_dict().items():
        if name == "embed.weight":
            state["model.embed_tokens.weight"] = w
        elif name == "norm.weight":
            state["model.norm.weight"] = w
        elif name == "lm_head.weight":
            state["lm_head.weight"] = w
        else:
            _, layer, rest = name.split(".", 2)
            state[f"model.layers.{layer}.{ours_to_hf[rest.removesuffix('.weight')]}.weight"] = w
    if c.tie_embeddings:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    hf.load_state_dict(state, strict=False, assign=True)
    # Buffers (RoPE inverse frequencies) were made on the meta device: make them for real.
    hf.model.rotary_emb = type(hf.model.rotary_emb)(config=cfg)
    return hf.eval().requires_grad_(False)


class TopKEveryStep:
    """A transformers logits processor that builds the per-step alternatives table (softmax, top-10)."""

    def __init__(self, k=10):
        self.k, self.tables = k, []

    def __call__(self, input_ids, scores):
        probs = torch.softmax(scores.float(), dim=-1)
        self.tables.append(probs.topk(self.k))
        return scores


def hf_generate(hf, ids, n):
    import transformers

    topk = TopKEveryStep()
    stamps = []

    class Stamp(transformers.generation.streamers.BaseStreamer):
        def put(self, value):
            stamps.append(time.perf_counter())

        def end(self):
            pass

    with torch.inference_mode():
        out = hf.generate(
            torch.tensor([ids]), max_new_tokens=n, do_sample=False, num_beams=1,
            logits_processor=transformers.LogitsProcessorList([topk]), streamer=Stamp(),
            pad_token_id=0, attention_mask=torch.ones(1, len(ids), dtype=torch.long),
        )
    # stamps[0] is the prompt, stamps[1] the first new token (after prefill), stamps[-1] the last.
    return out[0, len(ids):].tolist(), (n - 1) / (stamps[-1] - stamps[1])


def ours_generate(engine, ids, n):
    stamps, out = [], []
    for step in generate(engine, ids, GREEDY, n, set(), top_n=10):
        stamps.append(time.perf_counter())
        out.append(step.id)
    return out, (n - 1) / (stamps[-1] - stamps[0])


def products_s(decoder, repeats: int = 5) -> float:
    """Seconds of one decode step's matrix products at one row, in the layout the decoder picked (median)."""
    layout, times = decoder.choice.pick(1), []
    for _ in range(repeats):
        t0 = time.perf_counter()
        decoder.one_token_products(layout, 1)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def prefill_ms(engine, ids, hf=False):
    x = torch.tensor([ids])
    with torch.inference_mode():
        t0 = time.perf_counter()
        if hf:
            engine(x, use_cache=True, logits_to_keep=1)
        else:
            engine(x, cache=KVCache(engine.cfg, 1, len(ids) + 1), last_only=True)
        return (time.perf_counter() - t0) * 1000


def interleaved(fns: dict, repeats: int) -> tuple[dict, dict]:
    """Run each function `repeats` times, rotating the order every round.

    Returns the median of each, and for each name the median over rounds of its value divided
    by the first name's value in the same round: the load on a shared machine swings within
    seconds, and a ratio of neighbours is steadier than a ratio of medians.
    """
    names, results = list(fns), {n: [] for n in fns}
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            results[name].append(fns[name]())
    base = results[names[0]]
    ratios = {n: statistics.median(a / b for a, b in zip(v, base, strict=True)) for n, v in results.items()}
    return {n: statistics.median(v) for n, v in results.items()}, ratios


# ----------------------------------------------------------------------------- benchmarks


def bench_decode_prefill(lm, repeats: int, n_new: int) -> list[dict]:
    reference = lm.model
    fused = fastpath.FusedDecoder(lm.model)  # lays out its own copies; the textbook weights stay as they are
    layout_probe.tune(fused)  # this machine's layouts, read back or probed (bench_layouts.py checks them)
    hf = hf_twin(lm)
    ids = lm.prompt_ids(PROMPT)
    long_ids = (lm.tokenizer.encode_ids(" ".join([SENTENCE] * 8)))[:100]

    # Same weights? Logits of the whole prompt, and the greedy tokens.
    with torch.inference_mode():
        ours_logits, _ = reference(torch.tensor([long_ids]))
        hf_logits = hf(torch.tensor([long_ids])).logits
    logit_diff = (ours_logits - hf_logits).abs().max().item()
    hf_tokens, _ = hf_generate(hf, ids, n_new)
    ref_tokens, _ = ours_generate(reference, ids, n_new)
    fused_tokens, _ = ours_generate(fused, ids, n_new)
    same = f"logits max diff {logit_diff:.1e}; greedy {n_new} tokens: " + (
        "identical" if hf_tokens == ref_tokens == fused_tokens else
        f"differ (hf vs ours at {sum(a != b for a, b in zip(hf_tokens, ref_tokens, strict=False))} places)"
    )

    # One decode figure, with its bound measured around each run: this machine's read bandwidth swings
    # from one second to the next (27 to 48 GB/s within minutes, docs/performance.md), so each run is
    # divided by the bandwidth of its own moment: the median of four reads just before it and four just
    # after, a typical read as the run's rate is a typical step. The best of those eight reads, the
    # luckiest instant, is shown beside it. Beside each run, too, one token's matrix products alone at
    # one row, just before and just after it: how near the bound the products come, and what the rest of
    # a step costs (the run's step less the products' mean).
    nbytes = weight_bytes(fused)
    bounds, best_bounds, shares, products, rests = [], [], [], [], []

    def fused_beside_its_bound() -> float:
        reads, before = read_bandwidths(nbytes, 4), products_s(fused)
        rate = ours_generate(fused, ids, n_new)[1]
        products.append((before + products_s(fused)) / 2)  # the products just before and just after the run
        reads += read_bandwidths(nbytes, 4)
        bounds.append(statistics.median(reads) / nbytes)
        best_bounds.append(max(reads) / nbytes)
        shares.append(rate / bounds[-1])
        rests.append(1 / rate - products[-1])
        return rate

    rate, rate_x = interleaved({
        "hf": lambda: hf_generate(hf, ids, n_new)[1],
        "fp32": lambda: ours_generate(reference, ids, n_new)[1],
        "fused": fused_beside_its_bound,
    }, repeats)
    bound, share = statistics.median(bounds), statistics.median(shares)
    bandwidth = bound * nbytes / 1e9  # GB/s, the runs' median
    best_share = statistics.median(s * b / bb for s, b, bb in zip(shares, bounds, best_bounds, strict=True))
    best_bandwidth = statistics.median(best_bounds) * nbytes / 1e9
    pre, pre_x = interleaved({
        "hf": lambda: prefill_ms(hf, long_ids, hf=True),
        "fp32": lambda: prefill_ms(reference, long_ids),
        "fused": lambda: prefill_ms(fused, long_ids),
    }, repeats * 3)
    return [
        row("decode, fp32-fused vs the fp32 bandwidth bound", rate["fused"], bound, "tok/s",
            f"one stream, top-10 table every step; bound = {bandwidth:.1f} GB/s 2-thread read / "
            f"{nbytes / 1e6:.0f} MB of weights, the median of 8 reads around each of {repeats} decode runs: "
            "the ratio is the median of each run against its own bound; against the best of each run's "
            f"reads ({best_bandwidth:.1f} GB/s) {best_share:.2f}x; target >= 0.7x", share),
        row("decode ceiling: one token's products alone vs the bound", 1 / statistics.median(products), bound,
            "tok/s", f"every matrix product of one step at one row ({fused.choice.pick(1)} layout), nothing "
            "else; the ratio is the median of each run against its own bound",
            statistics.median(b * p for b, p in zip(bounds, products, strict=True)) ** -1),
        row("decode: the rest of a step, beside its products", statistics.median(rests) * 1000,
            statistics.median(products) * 1000, "ms", "one decode step's time less its products' time: "
            "attention, norms, RoPE, the cache, sampling and the top-10 table, in PyTorch operations",
            statistics.median(r / p for r, p in zip(rests, products, strict=True))),
        row("decode, fp32-fused vs transformers generate", rate["fused"], rate["hf"], "tok/s",
            f"greedy, top-10 table every step; {same}", rate_x["fused"]),
        row("decode, fp32 textbook vs transformers generate", rate["fp32"], rate["hf"], "tok/s", "same",
            rate_x["fp32"]),
        row("prefill 100 tokens, fp32-fused vs transformers", pre["fused"], pre["hf"], "ms", "target <= 1.1x",
            pre_x["fused"]),
        row("prefill 100 tokens, fp32 textbook vs transformers", pre["fp32"], pre["hf"], "ms", "",
            pre_x["fp32"]),
    ]


def bench_trace(lm, repeats: int) -> list[dict]:
    ids = lm.tokenizer.encode_ids(SENTENCE + " " + SENTENCE)[:32]
    x = torch.tensor([ids])

    def plain():
        with torch.inference_mode():
            t0 = time.perf_counter()
            lm.model(x)
            return (time.perf_counter() - t0) * 1000

    def full():
        t0 = time.perf_counter()
        t = tracing.trace(lm.model, ids)
        tracing.logit_lens(lm.model, t, -1, 5)
        return (time.perf_counter() - t0) * 1000

    ms, x = interleaved({"plain": plain, "full": full}, repeats * 3)
    return [row(f"trace of a {len(ids)}-token sentence vs plain forward", ms["full"], ms["plain"], "ms",
                "all attention maps + residuals + embeddings + logit lens at the last position; "
                "target <= 1.5x",
                x["full"])]


def bench_serving_pieces(lm, repeats: int) -> list[dict]:
    """Batched sampling, batched prefill and the prefix cache, each against the one-at-a-time way."""
    fused = fastpath.FusedDecoder(lm.model)
    layout_probe.tune(fused)
    warm = SamplingParams(temperature=0.8, top_p=0.95)
    questions = ("What is the capital of France?", "Name three colours.", "Write a haiku.", "What is 2 + 2?",
                 "Tell me a joke.", "Who wrote Hamlet?", "Say hi.", "Why is the sky blue?")
    ids = [lm.prompt_ids(q) for q in questions]
    with torch.inference_mode():
        logits = torch.cat([fused(torch.tensor([p]), last_only=True)[0][:, -1] for p in ids] * 4)  # (32, V)

    def batched():
        t0 = time.perf_counter()
        choose(logits, [warm] * 32, [make_generator(i) for i in range(32)], [10] * 32)
        return (time.perf_counter() - t0) * 1000

    def row_by_row():  # what the batcher did before: distribution, draw and table for each row alone
        t0 = time.perf_counter()
        for i in range(32):
            probs = distribution(logits[i], warm)
            draw(probs, make_generator(i))
            predict(logits[i], warm, 10, probs)
        return (time.perf_counter() - t0) * 1000

    T = min(len(p) for p in ids)
    rows = torch.tensor([p[:T] for p in ids])  # (8, T): 8 newcomers, the same number of tokens each

    def one_pass():
        t0 = time.perf_counter()
        fused(rows, cache=KVCache(fused.cfg, 8, T), last_only=True)
        return (time.perf_counter() - t0) * 1000

    def one_by_one():
        t0 = time.perf_counter()
        for r in rows:
            fused(r[None], cache=KVCache(fused.cfg, 1, T), last_only=True)
        return (time.perf_counter() - t0) * 1000

    prefixes, a, b = PrefixCache(), ids[0], ids[1]
    with torch.inference_mode():
        c = KVCache(fused.cfg, 1, len(a))
        fused(torch.tensor([a]), cache=c, last_only=True)
        prefixes.store(a, c, 0)
    entry, n = prefixes.lookup(b)

    def with_prefix():
        t0 = time.perf_counter()
        c = KVCache(fused.cfg, 1, len(b))
        prefixes.copy_into(entry, n, c, 0)
        fused(torch.tensor([b[n:]]), cache=c, last_only=True)
        return (time.perf_counter() - t0) * 1000

    def without_prefix():
        t0 = time.perf_counter()
        fused(torch.tensor([b]), cache=KVCache(fused.cfg, 1, len(b)), last_only=True)
        return (time.perf_counter() - t0) * 1000

    samp, samp_x = interleaved({"before": row_by_row, "batched": batched}, repeats * 2)
    pre, pre_x = interleaved({"before": one_by_one, "batched": one_pass}, repeats * 2)
    pc, pc_x = interleaved({"before": without_prefix, "cached": with_prefix}, repeats * 3)
    return [
        row("sampling + top-10 tables, 32 rows: batched vs row by row", samp["batched"], samp["before"], "ms",
            "temperature 0.8, top-p 0.95, each row its own generator; "
            "same tokens (tests/test_batched_sampling.py)",
            samp_x["batched"]),
        row(f"prefill of 8 prompts x {T} tokens: one pass vs one by one", pre["batched"], pre["before"], "ms",
            "fp32-fused", pre_x["batched"]),
        row(f"chat prompt prefill, {n} of {len(b)} tokens from the prefix cache vs none",
            pc["cached"], pc["before"],
            "ms", "fp32-fused; the same logits to float rounding (tests/test_prefix_cache.py)",
            pc_x["cached"]),
    ]


def start_server(cache: str, precision: str = DEFAULT_PRECISION) -> tuple[float, float, float]:
    """Seconds until /api/health says the model is ready, and resident memory (MB) at idle and after
    one generation."""
    import httpx
    import psutil

    sock = __import__("socket").socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "PREDICTION_MACHINE_CACHE": cache}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "prediction_machine", "serve", "--port", str(port),
                             "--precision", precision],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {proc.stderr.read().decode(errors='replace')[-500:]}")
            try:
                r = httpx.get(url + "/api/health", timeout=1)
                # The model loads in the background: health answers before it is ready.
                if r.status_code == 200 and r.json().get("model") != "loading":
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
            if time.perf_counter() - t0 > 120:
                raise RuntimeError("server not ready within 120 s")
        ready = time.perf_counter() - t0
        time.sleep(1.0)
        idle = psutil.Process(proc.pid).memory_info().rss / 2**20
        httpx.post(url + "/api/generate", json={"prompt": "Hi", "max_new_tokens": 4, "temperature": 0},
                   timeout=120)
        after = psutil.Process(proc.pid).memory_info().rss / 2**20
        return ready, idle, after
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def bench_serve(warm_repeats: int = 2) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="pm-bench-cache-") as cache:
        cold, cold_idle, _ = start_server(cache)
        warm = [start_server(cache) for _ in range(warm_repeats)]
        textbook = start_server(cache, "fp32")
    ready = statistics.median(w[0] for w in warm)
    idle = statistics.median(w[1] for w in warm)
    after = statistics.median(w[2] for w in warm)
    return [
        row("serve ready, first start (empty cache)", cold, 10.0, "s",
            "until the model is ready (health answers sooner: classroom rows); target < 10 s"),
        row("serve ready, second start (warm cache)", ready, 3.0, "s", "target < 3 s"),
        row(f"server RSS idle, {DEFAULT_PRECISION} (the default)", idle, 1536.0, "MB",
            f"after one generation {after:.0f} MB; target < 1.5 GB"),
        row("server RSS idle, --precision fp32", textbook[1], 1536.0, "MB",
            f"after one generation {textbook[2]:.0f} MB; ready in {textbook[0]:.1f} s"),
    ]


def run(quick: bool = False) -> list[dict]:
    torch.manual_seed(0)
    lm = models.load(precision="fp32")  # the textbook weights as loaded; each fused engine packs its own copy
    repeats = 3 if quick else 5
    rows = bench_decode_prefill(lm, repeats, 17 if quick else 33)
    rows += bench_serving_pieces(lm, repeats)
    rows += bench_trace(lm, repeats)
    rows += bench_serve(1 if quick else 2)
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import print_table

    print_table(run(quick="--quick" in sys.argv))
