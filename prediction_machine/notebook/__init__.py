"""Rich displays for Jupyter: the page's figures, drawn by the page's own JS and CSS in a notebook output.

See figures.py for the calls, bundle.py for how the page's code travels into an output, and
docs/notebooks.md for the example notebooks.
"""

from prediction_machine.notebook.figures import (
    Figure,
    ablation,
    attention,
    generation,
    logit_lens,
    prediction,
    trace,
)

__all__ = ["Figure", "ablation", "attention", "generation", "logit_lens", "prediction", "trace"]
