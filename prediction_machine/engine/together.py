"""A whole set of prompts decoded together, in the caller's own thread, by the batcher's own loop.

Some answers need many generations at once and none of them streamed: the calibration chart
answers every question of a set, the samples table draws one question a dozen times. They run
the same turns as the class's batcher (batching.Batcher: newcomers grouped, their prompts read
in chunks, every running row advanced in one pass, each row's token chosen by generation.choose),
so there is one decode loop, and each answer is the one generation.generate gives with its seed.

The turns run here, not on a background thread, for two reasons:

- the caller's stop test (cancel.py) comes along: a client who hangs up stops the set between
  two layers, and on a server the set still steps aside for the class's generations (priority.py);
- it is not a class's generation, so it never tells the priority gate it is one.

    steps = decode_together(decoder, [(prompt, SamplingParams(temperature=0.0), 10, stop_ids)])
    steps[0]   # the Steps of the first prompt, as generate() yields them
"""

from __future__ import annotations

import torch

from prediction_machine.engine.batching import Batcher, Request
from prediction_machine.inference.generation import Step, check_prompt
from prediction_machine.inference.sampling import SamplingParams, make_generator


class Together(Batcher):
    """A batcher of its own for one set of prompts, driven turn by turn by whoever calls `run`."""

    def run(self, jobs: list[tuple]) -> list[list[Step]]:
        """Every job is (prompt_ids, params, max_new_tokens, stop_ids[, seed[, top_n]]), as `submit` takes
        them; returns each job's Steps, in the jobs' order."""
        reqs = [self.request(*job) for job in jobs]
        self.pending.extend(reqs)
        with torch.inference_mode():
            while self.pending or self.filling or self.rows:
                if not self.filling:
                    self._start_group()  # newcomers, as many as max_rows and the prefill budget allow
                if self.filling:
                    self._prefill_pass()
                if self.rows:
                    self._decode()
        return [list(iter(r.out.get_nowait, None)) for r in reqs]  # every Step is queued by now

    def request(self, prompt_ids: list[int], params: SamplingParams, max_new_tokens: int,
                stop_ids: set[int] = frozenset(), seed: int | None = None, top_n: int = 0) -> Request:
        check_prompt(prompt_ids, self.cfg.max_seq_len)
        return Request(list(prompt_ids), params, max_new_tokens, set(stop_ids), top_n,
                       None if params.greedy else make_generator(seed), ids=list(prompt_ids))


def decode_together(decoder, jobs: list[tuple]) -> list[list[Step]]:
    """Together(decoder).run(jobs): a Transformer or a FusedDecoder, every job's Steps."""
    return Together(decoder, max_rows=max(1, len(jobs))).run(jobs)
