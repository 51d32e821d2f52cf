"""What the web server accepts: every limit here is also written into the OpenAPI schema."""

from __future__ import annotations

from dataclasses import dataclass

from prediction_machine.config import DEFAULT_PRECISION
from prediction_machine.training.attention import MAX_TOKENS as MAX_ATTENTION_TOKENS
from prediction_machine.web.early import LOOPBACK_HOSTS


@dataclass(frozen=True)
class ServerSettings:
    """What the web server accepts. Every limit here is also written into the OpenAPI schema."""

    host: str = "127.0.0.1"  # loopback only: nobody else on the network can reach the page
    port: int = 8000
    model: str = "smollm2-135m-instruct"
    token: str | None = None  # classroom mode: every API call must carry this access token
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS  # Host headers we answer
    max_body_bytes: int = 4 * 1024 * 1024  # any request body above this gets a 413
    max_prompt_chars: int = 4000  # a prompt longer than this is refused before tokenizing
    max_prompt_tokens: int = 1024  # ... and one that tokenizes to more than this
    max_new_tokens: int = 512  # the most tokens one generation may ask for
    max_running: int = 4  # generations computed at the same time (batched together)
    max_queued: int = 32  # generations waiting for a slot; beyond this the server answers 429
    max_attention_tokens: int = MAX_ATTENTION_TOKENS  # the attention explorer's longest sentence, in tokens
    max_training_jobs: int = 2  # curriculum and playground jobs running at once
    precision: str = DEFAULT_PRECISION  # the numeric path generation runs on (config.PRECISIONS); --precision
    max_memory_mb: int = 4096  # --max-memory: generations that would pass it wait their turn (engine/memory.py)
    stream_send_timeout_s: float = 10.0  # a stream whose client accepts no bytes for this long is dropped, its place freed
    # -- abuse limits. Each can be changed with PREDICTION_MACHINE_<NAME>, e.g. PREDICTION_MACHINE_MAX_CONNECTIONS=400
    max_connections: int = 256  # open TCP connections at once (also kept under the open-file limit); more are closed at once
    connections_per_ip: int = 32  # classroom mode: one address's share of max_connections
    header_timeout_s: float = 10.0  # a connection must finish sending its request headers within this
    body_timeout_s: float = 10.0  # ... and its request body within this (408 otherwise)
    keep_alive_s: float = 5.0  # an idle kept-alive connection is closed after this (uvicorn timeout_keep_alive)
    places_per_ip: int = 8  # classroom mode: generation places (running + queued) one address may hold; raise for a lab behind one NAT
    pause_timeout_s: float = 600.0  # a paused training job is stopped (with a checkpoint) after this, freeing its place
    playground_sessions_per_client: int = 3  # classroom mode: open playground sessions per student
    playground_idle_s: float = 900.0  # a playground session nobody touched for this long is forgotten
    run_quota_mb: float = 500.0  # run folders one client may keep; its oldest runs are removed first
    run_max_age_days: float = 14.0  # a client's runs older than this are removed when it starts a new one
    teacher_token: str | None = None  # classroom mode: a second token for the teacher (sees and stops every job)
