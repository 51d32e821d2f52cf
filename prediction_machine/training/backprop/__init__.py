"""Neural networks and backpropagation from scratch (the guide's first training section)."""
