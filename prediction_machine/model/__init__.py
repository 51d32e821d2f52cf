"""The machine both halves of the guide share: the decoder, its trace, its weights, the chat template."""
