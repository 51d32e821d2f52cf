"""One machine, any sequence: the text model's decoder, sampling and generation loop on pixels and notes.

    pixel_tokens.py, note_tokens.py   each modality's tokenizer: the only new idea
    data.py                           the digits and chorales, read from their packages' files
    digits.py, melody.py              the two figures' functions and their measurements
    train.py                          the one training loop (curriculum/loop.py), with these data
    baselines.py, nll.py              the counting baselines, and the held-out NLL they are held to
    classifier.py                     the judge of what a drawing looks like
    shipped.py, midi.py               the shipped models, loaded once; a hand-written MIDI file
    own.py                            the learner's live runs, beside the shipped models
"""
