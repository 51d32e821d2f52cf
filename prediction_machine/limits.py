"""The sampling defaults and limits that the library, the CLI and the web API share, declared once.

No PyTorch or NumPy here: the CLI builds its parser (and states these in its help) before
either is imported. The web server's own limits (prompt sizes, connections, ...) are ServerSettings in
web/settings.py; docs/settings.md lists both, and tests/test_docs.py keeps it complete.
"""

TEMPERATURE = 0.7  # the default of `generate`, the API and the page: a little sharper than the model
MAX_TEMPERATURE = 2.0  # the most the CLI and every API accept: past it nearly every token is as likely as any
NEW_TOKENS = 64  # how many tokens `generate` and /api/generate ask for when not told
GREEDY_BELOW = 1e-5  # a temperature below this is greedy: in float32 the softmax is a one-hot anyway
EXPERIMENT_TEMPERATURE = 0.0  # branch, lens and steer start greedy: a rerun shows the same text
EXPERIMENT_NEW_TOKENS = 16  # how many tokens branch, lens and steer generate when not told
MAX_EXPERIMENT_NEW_TOKENS = 64  # their most: branch and steer generate twice, the lens reads every layer
MAX_STEER_TEXTS = 8  # a steering direction's positive texts, and its negative ones, at most
MAX_STEER_STRENGTH = 100.0  # steer's strength is at most this far from 0, either way
MAX_RECORDING_BYTES = 512 * 1024  # one recorded session (`record`, GET /api/recordings): a replay is small
MAX_RECORDINGS = 50  # GET /api/recordings lists at most this many (the newest saved ones first)
MAX_QUESTION = 300  # 'Why it makes things up' (/api/makes-up/*): a question's characters at most
MAX_QUESTION_CONTEXT = 600  # ... and the fact given in the prompt before it
MAX_SAMPLES = 8  # ... answers sampled per temperature
MAX_ANSWER_TOKENS = 48  # ... new tokens per answer, greedy or sampled
MAX_SOURCE_TEXT = 2000  # a model's text the training-text lookup reads (`source`, /api/curriculum/source)
MAX_SNAPSHOTS_SHOWN = 81  # the most training snapshots one answer holds: more are thinned evenly to this
MAX_PREFERENCE_TEXT = 200  # characters of a preference pair's prompt or answer (the tiny model: 128 tokens)
MAX_PREFERENCE_PAIRS = 64  # pairs in one learner's preference set: a DPO run of minutes at most on 2 cores
MAX_TRAINING_TEXT = 2_000_000  # characters of a learner's own training text: minutes of tokenizing at most
