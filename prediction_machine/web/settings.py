"""What the web server accepts: every limit and default of a server, declared once.

The request schemas check the limits when a request comes (validation.up_to), the served OpenAPI
document states them, `serve` prints them, GET /api/settings answers them, and docs/settings.md is
generated from this file (tests/test_docs.py keeps it so). Any field but FROM_FLAGS_ONLY can be
changed when the server starts with PREDICTION_MACHINE_<FIELD>, for example
PREDICTION_MACHINE_MAX_CONNECTIONS=400 (serve.settings_from_env). The sampling defaults that the
library and the CLI share live in prediction_machine/limits.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from prediction_machine.config import DEFAULT_PRECISION
from prediction_machine.engine.priority import HEAVY_SHARE
from prediction_machine.training.attention import MAX_TOKENS as MAX_ATTENTION_TOKENS
from prediction_machine.web.early import LOOPBACK_HOSTS

FROM_FLAGS_ONLY = ("host", "port", "model", "token", "allowed_hosts")  # serve's flags set these, not the env
AT_MOST = {"heavy_share": 1.0}  # settings with a ceiling as well as the floor (above 0) every number has


@dataclass(frozen=True)
class ServerSettings:
    """What the web server accepts. Every limit here is also written into the OpenAPI schema."""

    # ----------------------------------------------------------------------------- who may connect
    host: str = "127.0.0.1"  # loopback only: nobody else on the network can reach the page
    port: int = 8000  # the page is http://host:port/
    model: str = "smollm2-135m-instruct"  # the page's model: a name from `models`, or a checkpoint folder
    token: str | None = None  # classroom mode: every API call must carry this token
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS  # Host headers answered (from --host)
    teacher_token: str | None = None  # classroom mode: the teacher's token (sees and stops every job)

    # ----------------------------------------------------------------------------- what one request may ask
    max_body_bytes: int = 4 * 1024 * 1024  # any request body above this gets a 413
    max_prompt_chars: int = 4000  # a prompt longer than this is refused before tokenizing
    max_prompt_tokens: int = 1024  # ... and one that tokenizes to more than this
    max_new_tokens: int = 512  # the most tokens one generation may ask for
    max_attention_tokens: int = MAX_ATTENTION_TOKENS  # the attention explorer's longest sentence, in tokens
    max_experiment_tokens: int = 64  # an experiment's longest prompt in tokens (a scan reruns it per head)

    # ----------------------------------------------------------------------------- generation capacity
    max_running: int = 4  # generations computed at the same time, batched together
    max_queued: int = 32  # generations waiting for a slot; beyond this the server answers 429
    places_per_ip: int = 8  # classroom mode: generation places (running + queued) one address may hold
    heavy_running: int = 2  # heavier answers (safety table, comparisons, trace...) computed at once
    heavy_queued: int = 16  # ... waiting for one of those places; beyond this the server answers 429
    heavy_places_per_ip: int = 4  # classroom mode: heavy places (running + queued) one address may hold
    heavy_per_minute_per_ip: float = 20.0  # classroom mode: heavy requests one address may start a minute
    heavy_burst_per_ip: int = 8  # ... this many at once (a token bucket); beyond them, 429 with Retry-After
    heavy_share: float = HEAVY_SHARE  # heavy answers' share of the time while generations decode (at most 1)
    precision: str = DEFAULT_PRECISION  # the numeric path generation runs on (config.PRECISIONS)
    max_memory_mb: int = 4096  # generations that would pass this memory budget wait their turn
    stream_send_timeout_s: float = 10.0  # a stream whose client takes no bytes this long is dropped

    # ----------------------------------------------------------------------------- connections
    max_connections: int = 256  # open TCP connections at once (kept under the open-file limit too)
    connections_per_ip: int = 32  # classroom mode: one address's share of max_connections
    header_timeout_s: float = 10.0  # a connection must finish sending its request headers within this
    body_timeout_s: float = 10.0  # ... and its request body within this (408 otherwise)
    keep_alive_s: float = 5.0  # an idle kept-alive connection is closed after this

    # ----------------------------------------------------------------------------- training jobs and runs
    max_training_jobs: int = 2  # curriculum and playground jobs running at once
    max_training_queued: int = 8  # classroom mode: training jobs waiting (told their place in line); then 429
    training_jobs_per_client: int = 1  # classroom mode: one student's jobs running, paused or waiting
    training_jobs_per_ip: int = 2  # classroom mode: ... and one address's (raise it for a lab behind NAT)
    classroom_max_steps: int = 2000  # classroom mode: the most optimizer steps one training job may ask for
    pause_timeout_s: float = 600.0  # a paused training job is stopped (with a checkpoint) after this
    playground_sessions_per_client: int = 3  # classroom mode: open playground sessions per student
    playground_sessions_per_ip: int = 8  # classroom mode: ... and per address, however many ids it holds
    playground_idle_s: float = 900.0  # a playground session nobody touched for this long is forgotten
    run_quota_mb: float = 500.0  # run folders one client may keep; its oldest runs are removed first
    run_quota_mb_per_ip: float = 1000.0  # classroom mode: ... and all the clients of one address together
    run_max_age_days: float = 14.0  # a client's runs older than this are removed when it starts a new one

    # ----------------------------------------------------------------------------- the class (classroom mode)
    round_guess_chars: int = 40  # a student's typed guess in a round ("What word comes next?"), in characters
    round_answers_per_student: int = 1  # draws one student may make in one round
    round_answers_kept: int = 1000  # answers one round keeps in memory; later ones get 429
    rounds_per_hour: int = 30  # rounds the teacher may start within any hour; then 429
    rounds_kept: int = 20  # the latest rounds kept in memory for the teacher's screen and CSV export
    nickname_chars: int = 24  # a student's optional nickname, shown as plain text on the teacher's screen
    class_students_kept: int = 500  # students the teacher's roster remembers; the longest unseen go first
    class_link_chars: int = 2000  # a link the teacher shows everyone ("Show everyone this"), in characters
    class_rating_pairs: int = 6  # pairs in one class rating round (one vote per student per pair)
    class_rating_votes_kept: int = 5000  # votes one class rating round keeps in memory; later ones get 429
    class_rating_steps: int = 12  # optimizer steps of a class rating round's one DPO run
