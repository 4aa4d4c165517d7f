"""A recorded babysitting session on real MNIST (the screenshot in docs/panda/): train, raise the
learning rate too far, roll back to before the change, go on more gently, then replay both
branches from the root.

    python examples/panda_session.py ../shared/datasets/mnist   # about a minute on 2 CPU cores

Needs Debian's chromium (and playwright) for the screenshot; writes panda-session.db and
panda-rollback.png in the working folder.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

DB = "panda-session.db"
CONFIG = """\
[study]
name = "mnist-sit"
[data]
dataset = "mnist"
data_dir = "{data_dir}"
train_size = 30000
[space]
hidden_units = 128
n_layers = 2
batch_norm = true
optimizer = "adam"
lr = 1e-3
batch_size = 100
epochs = 12
"""


def main(data_dir: str) -> None:
    Path("mnist_panda.toml").write_text(CONFIG.format(data_dir=Path(data_dir).resolve()))
    caviar = str(Path(sys.executable).parent / "caviar")
    run = subprocess.Popen(
        [caviar, "panda", "mnist_panda.toml", "--storage", DB], stdout=subprocess.PIPE, text=True
    )
    assert run.stdout is not None
    url = re.search(r"(http://\S+)", run.stdout.readline()).group(1)  # type: ignore[union-attr]
    token = url.split("token=")[1]

    def state() -> dict:
        request = urllib.request.Request(
            url.split("?")[0] + "api/state", headers={"Authorization": f"Bearer {token}"}
        )
        return json.load(urllib.request.urlopen(request))

    def until(done) -> dict:
        while not done(s := state()):
            time.sleep(0.2)
        return s

    def control(*args: str) -> None:
        out = subprocess.run([caviar, "panda", *args, "--storage", DB], capture_output=True)
        print(out.stdout.decode().strip())

    def applied(n: int):
        return lambda s: sum(c["applied"] for c in s["commands"]) >= n

    until(lambda s: s["epoch"] >= 3)
    control("set", "lr=0.05")  # too high: it hurts
    s = until(applied(1))
    until(lambda t: t["epoch"] >= s["epoch"] + 3)
    control("rollback", str(s["commands"][0]["epoch"]))  # back to before the change, exact
    until(applied(2))
    control("set", "lr=3e-4")  # a gentler way on
    until(applied(3))
    until(lambda s: s["branch"] == 1 and s["epoch"] >= 12)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(url)
        time.sleep(3)
        page.screenshot(path="panda-rollback.png", full_page=True)
        browser.close()
    control("stop")
    run.wait(timeout=60)
    for args in (("list",), ("replay", "--branch", "0"), ("replay", "--branch", "1")):
        control(*args)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/datasets/mnist")
