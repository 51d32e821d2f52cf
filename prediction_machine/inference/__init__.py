"""Part 3 of the page, one file per stage in page order.

tokenizer, embedding, transformer view, prediction, sampling, generation.
"""
