"""What the web server accepts: every limit here is also written into the OpenAPI schema."""

from __future__ import annotations

from dataclasses import dataclass

from prediction_machine.training.attention import MAX_TOKENS as MAX_ATTENTION_TOKENS


@dataclass(frozen=True)
class ServerSettings:
    """What the web server accepts. Every limit here is also written into the OpenAPI schema."""

    host: str = "127.0.0.1"  # loopback only: nobody else on the network can reach the page
    port: int = 8000
    model: str = "smollm2-135m-instruct"
    token: str | None = None  # classroom mode: every API call must carry this access token
    allowed_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "[::1]", "::1")  # Host headers we answer
    max_body_bytes: int = 4 * 1024 * 1024  # any request body above this gets a 413
    max_prompt_chars: int = 4000  # a prompt longer than this is refused before tokenizing
    max_prompt_tokens: int = 1024  # ... and one that tokenizes to more than this
    max_new_tokens: int = 512  # the most tokens one generation may ask for
    max_running: int = 4  # generations computed at the same time (batched together)
    max_queued: int = 32  # generations waiting for a slot; beyond this the server answers 429
    max_attention_tokens: int = MAX_ATTENTION_TOKENS  # the attention explorer's longest sentence, in tokens
    max_training_jobs: int = 2  # curriculum and playground jobs running at once
