"""engine/allocator.py: the C allocator keeps freed vocabulary-sized blocks for the next step."""

import sys

import pytest

from prediction_machine.engine import allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_keep_freed_memory_takes_effect_once_on_linux():
    assert allocator.keep_freed_memory() is True
    assert allocator.keep_freed_memory() is True  # asked again: nothing changes, the answer is the same


def test_the_cli_sets_it_before_any_command(monkeypatch, capsys):
    from prediction_machine import cli

    called = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: called.append(True))
    assert cli.main(["models"]) == 0
    assert called == [True]
