"""`prediction-machine pretrain` and `finetune` (added by the curriculum issue)."""


def register(sub) -> None:
    pass
