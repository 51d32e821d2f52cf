"""The page's "view code" links: which functions the page may show, and their source.

SOURCE_NAMES is the allowlist, and the only one: every name a codeLink(...) in static/js uses,
and nothing else (tests/test_code_links.py checks that the two agree). GET /api/source serves
exactly these names.

A name is resolved without importing anything, so asking for the source never runs code:

    "prediction_machine.model.transformer.Block.forward"
      -> folder prediction_machine/model/, file transformer.py, then Block.forward inside it,
         found by parsing the file with `ast`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from importlib.resources import files

PACKAGE = "prediction_machine"

# In page order: the inference stages, then the training sections.
SOURCE_NAMES: tuple[str, ...] = (
    # part 3, inference: one link per stage, in the module the stage is named after
    "prediction_machine.inference.tokenizer.merge_word",
    "prediction_machine.inference.embedding.describe",
    "prediction_machine.model.transformer.Block.forward",
    "prediction_machine.inference.prediction.predict",
    "prediction_machine.inference.sampling.distribution",
    "prediction_machine.inference.sampling.draw",
    "prediction_machine.inference.generation.generate",
    # experiments: ask what if, one link per experiment
    "prediction_machine.experiments.branching.forced_run",
    "prediction_machine.experiments.generation_lens.lens_over",
    "prediction_machine.experiments.ablation.ablate",
    "prediction_machine.experiments.head_scan.scan_steps",
    "prediction_machine.experiments.patching.patched_probs",
    "prediction_machine.experiments.attribution.attribute",
    "prediction_machine.experiments.steering.steer",
    # why it makes things up
    "prediction_machine.inference.makes_up.answer",
    "prediction_machine.inference.calibration.calibration",
    # part 2, training: backpropagation
    "prediction_machine.training.backprop.neuron.neuron_step",
    "prediction_machine.training.backprop.engine.Value.backward",
    "prediction_machine.training.backprop.playground.Session.step",
    "prediction_machine.training.backprop.vectorized.TensorMLP.gradients",
    "prediction_machine.training.backprop.datasets.make",
    # self-attention
    "prediction_machine.training.attention.score_breakdown",
    "prediction_machine.training.attention.queries_and_keys",
    # the curriculum
    "prediction_machine.training.curriculum.pretrain.pretrain",
    "prediction_machine.training.curriculum.bpe.train",
    "prediction_machine.training.curriculum.finetune.finetune",
    "prediction_machine.training.curriculum.finetune.encode",
    "prediction_machine.training.curriculum.finetune.compare",
    "prediction_machine.training.curriculum.scale.panel",
    "prediction_machine.training.curriculum.lora.LoRALinear",
    "prediction_machine.training.curriculum.induction.induction_scores",  # circuits forming
    "prediction_machine.training.curriculum.snapshots.measure",
    # alignment: preference tuning and safety
    "prediction_machine.training.curriculum.rating.learner_dpo",
    "prediction_machine.training.curriculum.dpo.dpo_loss",
    "prediction_machine.training.curriculum.safety.measure",
    "prediction_machine.training.curriculum.safety.refused",
    "prediction_machine.training.curriculum.rating.three_stages",
    # one machine, any sequence: the shared decoder, sampling and loop above, plus each modality's tokenizer
    "prediction_machine.sequences.pixel_tokens.encode",
    "prediction_machine.sequences.note_tokens.encode",
    "prediction_machine.sequences.digits.draw",
    "prediction_machine.sequences.melody.compose",
    "prediction_machine.sequences.train.train",
    "prediction_machine.sequences.own.compare",
)


# Links whose code runs as it is for one sequence (the CLI's generate, the previews), while a class
# generating together runs a batched twin: the page shows this line beside the code.
BATCHED_TWINS: dict[str, str] = {
    "prediction_machine.inference.prediction.predict": "predict_rows",
    "prediction_machine.inference.sampling.draw": "draw_rows",
}
TWIN_TEST = "tests/test_batched_sampling.py"


def note(name: str) -> str | None:
    """The one line the page shows under a link's code, or None.

    note("prediction_machine.inference.sampling.draw") -> "When many people generate at once, ..."
    """
    twin = BATCHED_TWINS.get(name)
    if twin is None:
        return None
    return (f"When many people generate at once, the server runs {twin}, the batched version of this code in "
            f"the same file; {TWIN_TEST} checks that it gives every row exactly these results.")


@dataclass(frozen=True)
class Source:
    name: str  # the dotted name asked for
    file: str  # path inside the package, e.g. "prediction_machine/model/transformer.py"
    line: int  # first line (a decorator's, if it has one), counting from 1
    source: str  # the definition's lines, as they are in the file
    note: str | None = None  # one line the page shows under the code (see BATCHED_TWINS)


def find(name: str) -> Source | None:
    """The source of one allowlisted function or class, or None.

    find("prediction_machine.inference.sampling.distribution").file
      -> "prediction_machine/inference/sampling.py"
    find("prediction_machine.__main__.main") -> None (not a view-code link)
    """
    if name not in SOURCE_NAMES:
        return None
    parts = name.split(".")[1:]  # drop "prediction_machine"
    # Walk folders while they exist; the next part is the .py file; the rest is the qualname inside it.
    here = files(PACKAGE)
    path = [PACKAGE]
    while parts and here.joinpath(parts[0]).is_dir():
        here = here.joinpath(parts[0])
        path.append(parts.pop(0))
    if len(parts) < 2 or not here.joinpath(parts[0] + ".py").is_file():
        return None
    module = here.joinpath(parts[0] + ".py")
    path.append(parts[0] + ".py")
    text = module.read_text(encoding="utf-8")
    node = _definition(ast.parse(text), parts[1:])
    if node is None:
        return None
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    lines = text.splitlines(keepends=True)[start - 1 : node.end_lineno]
    return Source(name=name, file="/".join(path), line=start, source="".join(lines), note=note(name))


Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _definition(tree: ast.Module, qualname: list[str]) -> Definition | None:
    """Follow a dotted qualname (["Block", "forward"]) through top-level defs and class bodies."""
    body, node = tree.body, None
    for part in qualname:
        node = next((n for n in body if isinstance(n, Definition) and n.name == part), None)
        if node is None:
            return None
        body = node.body if isinstance(node, ast.ClassDef) else []
    return node
