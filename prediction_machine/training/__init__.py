"""Part 2 of the page, how a model learns: backpropagation, attention, the curriculum."""
