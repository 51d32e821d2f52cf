"""Experiments: ask the model "what if", by re-running it with one thing changed.

Every experiment is an ordinary forward pass of the textbook Transformer with hooks
(model/hooks.py) at the points it changes or reads; nothing here is a second model.

    readout.py          shared helpers: prompt -> ids, the next-token table, token objects
    ablation.py         switch a part off (one head, a layer's heads, an MLP) and compare
    head_scan.py        switch off every head in turn, batched, for a layer x head heatmap
    attribution.py      split the chosen token's logit into embedding, attention, heads and MLPs
    patching.py         copy the residual stream from one prompt's run into another's
    branching.py        force another token at one step of a generation and continue
    generation_lens.py  which layer decided each generated token
    steering.py         add a direction to the residual stream and compare the answers
    presets.py          the canonical examples, with results measured on the shipped model
"""
