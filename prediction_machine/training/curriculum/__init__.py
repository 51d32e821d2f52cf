"""Pre-training then fine-tuning: corpus, BPE, the shared loop, run folders, and each stage of training."""
