"""Configuration as plain dataclasses with commented defaults, plus small named presets.

The defaults describe SmolLM2-135M, the model the guide runs. The presets describe the
tiny models the curriculum trains from scratch with the very same decoder. Every config is a
`Settings` (saved beside a checkpoint as JSON); every training config is a `TrainSettings`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


class Settings:
    """to_dict / from_dict for the config dataclasses, as saved beside a checkpoint."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})  # a newer file's extra keys are ignored


@dataclass(frozen=True)
class TrainSettings(Settings):
    """The settings every training run has, read by the one loop (training/curriculum/loop.py).

    Each trainer's config (pretrain, finetune, dpo, lora, sequences) subclasses it, adds its own
    fields and sets its own defaults; a named recipe (training/curriculum/recipes.py) is one of them.
    """

    steps: int = 100  # optimizer steps in the whole run
    batch_size: int = 16  # examples per step: windows, conversations, pairs, images or tunes
    lr: float = 1e-3  # peak learning rate, reached after warm-up
    min_lr_ratio: float = 0.1  # the cosine ends at lr x this (1.0 = a constant rate)
    warmup: int = 10  # steps of linear warm-up from 0 (0 = none)
    weight_decay: float = 0.0  # AdamW decay on matrices (never on norms)
    grad_clip: float | None = 1.0  # the gradient's norm is capped here (None = no cap)
    eval_every: int = 25  # evaluate every N steps and at the last (0 = never)
    sample_every: int = 0  # write a sample every N steps and at the last (0 = never)
    checkpoint_every: int = 0  # checkpoint every N steps (0 = only on pause, on stop and at the end)
    seed: int = 0  # the weights' seed; step s draws its batch with seed x 1_000_003 + s


@dataclass(frozen=True)
class ModelConfig(Settings):
    vocab_size: int = 49152  # number of token ids the embedding table holds
    d_model: int = 576  # width of the residual stream
    n_layers: int = 30  # transformer blocks stacked on top of each other
    n_heads: int = 9  # query heads per attention layer
    n_kv_heads: int = 3  # key/value heads; each is shared by n_heads // n_kv_heads query heads (GQA)
    d_ff: int = 1536  # hidden width of the SwiGLU MLP
    max_seq_len: int = 8192  # the longest context the model was trained for
    rope_base: float = 100000.0  # RoPE frequency base; larger means slower-turning rotations
    norm_eps: float = 1e-5  # keeps RMSNorm finite on an all-zero vector
    tie_embeddings: bool = True  # the unembedding reuses the token embedding matrix

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads={self.n_heads} must be divisible by n_kv_heads={self.n_kv_heads}")
        if self.head_dim % 2:
            raise ValueError(f"head_dim={self.head_dim} must be even for rotary embeddings")

    def num_parameters(self) -> int:
        """Count of weights, computed from the shapes alone (embedding counted once when tied)."""
        d, f, hd = self.d_model, self.d_ff, self.head_dim
        attn = d * self.n_heads * hd + 2 * d * self.n_kv_heads * hd + self.n_heads * hd * d
        block = attn + 3 * d * f + 2 * d
        head = 0 if self.tie_embeddings else self.vocab_size * d
        return self.vocab_size * d + self.n_layers * block + d + head


SMOLLM2_135M = ModelConfig()

PRESETS: dict[str, ModelConfig] = {
    "smollm2-135m": SMOLLM2_135M,
    # Trains usefully on 2 CPU cores in minutes (the curriculum's default).
    "tiny": ModelConfig(
        vocab_size=1024, d_model=128, n_layers=4, n_heads=4, n_kv_heads=2, d_ff=384,
        max_seq_len=128, rope_base=10000.0,
    ),
    # For a GPU or a patient afternoon.
    "small": ModelConfig(
        vocab_size=4096, d_model=384, n_layers=6, n_heads=6, n_kv_heads=2, d_ff=1024,
        max_seq_len=256, rope_base=10000.0,
    ),
}


# The numeric paths generation can run on (engine/fastpath.py).
# Plain data, so the CLI lists them without torch.
PRECISIONS = {
    "fp32": "float32, the textbook path in transformer.py (the reference)",
    "fp32-fused": "float32, fused matrices packed for oneDNN (fastpath.py); same numbers to ~1e-4",
}
# The default is the fused path: tests/test_fastpath.py holds it to the textbook's logits (within 1e-3)
# and greedy tokens (identical); `--precision fp32` runs the textbook code itself.
DEFAULT_PRECISION = "fp32-fused"
