"""`prediction-machine backprop`: train the playground network in the terminal (added by its issue)."""


def register(sub) -> None:
    pass
