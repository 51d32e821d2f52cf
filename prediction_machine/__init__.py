"""Prediction Machine: how a language model predicts the next token, computed live.

The Python API, in the order the guide uses it:

    import prediction_machine as pm

    lm = pm.load()                                   # SmolLM2-135M-Instruct, offline
    ids = lm.prompt_ids("What is the capital of France?")   # chat template + tokenizer
    t = pm.trace(lm.model, ids)                      # embeddings, attention, residuals, logits
    lens = pm.logit_lens(lm.model, t)                # each layer's best guess
    for step in pm.generate(lm.model, ids, pm.SamplingParams(temperature=0), 20, lm.stop_ids):
        print(lm.tokenizer.token(step.id).text, step.prob)

Names are imported lazily, so `prediction-machine --help` does not pay for importing torch.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "load": "model.models",
    "LanguageModel": "model.models",
    "DEFAULT_MODEL": "model.models",
    "ModelConfig": "config",
    "PRESETS": "config",
    "Transformer": "model.transformer",
    "KVCache": "model.transformer",
    "Tokenizer": "inference.tokenizer",
    "Token": "inference.tokenizer",
    "trace": "model.tracing",
    "Trace": "model.tracing",
    "logit_lens": "model.tracing",
    "SamplingParams": "inference.sampling",
    "distribution": "inference.sampling",
    "draw": "inference.sampling",
    "predict": "inference.prediction",
    "generate": "inference.generation",
    "Step": "inference.generation",
    "ablate": "experiments.ablation",
    "head_scan": "experiments.head_scan",
    "attribute": "experiments.attribution",
    "patch": "experiments.patching",
    "patch_grid": "experiments.patching",
    "branch": "experiments.branching",
    "generation_lens": "experiments.generation_lens",
    "steer": "experiments.steering",
    "steering_direction": "experiments.steering",
    "run_snapshots": "training.curriculum.snapshots",
    "calibration": "inference.calibration",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'prediction_machine' has no attribute {name!r}")
