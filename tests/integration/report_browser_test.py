#!/usr/bin/python3
"""`rollout report` rendered in headless Chromium (Debian's chromium and chromium-driver),
driven over the WebDriver protocol: the page loads with no console errors and no network
requests, and shows the Gantt chart and one status chart per dispatched stage.

Usage: report_browser_test.py ROLLOUT_BINARY SOURCE_DIR OUT_DIR
Leaves OUT_DIR/report.html and OUT_DIR/report.png (a screenshot) to look at.
"""
import base64
import json
import os
import socket
import shutil
import subprocess
import sys
import time
from pathlib import Path

import requests

ROLLOUT, SRC, OUT = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
OUT.mkdir(parents=True, exist_ok=True)
TOKEN = "tok-SECRET-report-77"


def rollout(*argv):
    env = dict(os.environ, UPSWIFT_USER_TOKEN=TOKEN)
    return subprocess.run([ROLLOUT, *argv], env=env, capture_output=True, text=True, timeout=120)


db = OUT / "report-state.db"
for f in OUT.glob("report-state.db*"):
    shutil.rmtree(f) if f.is_dir() else f.unlink()  # the database, and its simulated fleet's records
# A run with something to show: the canary fails half its devices and is rolled back.
p = rollout("apply", str(SRC / "tests/plans/four-stage.yaml"), "--state", str(db), "--simulate",
            str(SRC / "tests/fleets/failing-canary.yaml"), "--time-scale", "600", "--no-progress")
assert p.returncode == 3, p.stdout + p.stderr
report = OUT / "report.html"
p = rollout("report", "last", "--state", str(db), "-o", str(report))
assert p.returncode == 0, p.stdout + p.stderr
html = report.read_text()
assert TOKEN not in html, "the token is in the report"

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
driver = subprocess.Popen(["/usr/bin/chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
base = f"http://127.0.0.1:{port}"
try:
    for _ in range(100):
        try:
            if requests.get(f"{base}/status", timeout=1).json()["value"]["ready"]:
                break
        except (requests.ConnectionError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    caps = {"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": "/usr/bin/chromium",
                               "args": ["--headless", "--no-sandbox", "--disable-gpu",
                                        "--window-size=1280,2000"]},
        "goog:loggingPrefs": {"browser": "ALL"}}}}
    r = requests.post(f"{base}/session", json=caps, timeout=60).json()
    session = f"{base}/session/{r['value']['sessionId']}"
    try:
        requests.post(f"{session}/url", json={"url": report.resolve().as_uri()}, timeout=60).raise_for_status()

        def js(script):
            r = requests.post(f"{session}/execute/sync", json={"script": script, "args": []}, timeout=30)
            r.raise_for_status()
            return r.json()["value"]

        facts = js("""
            const box = e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; };
            const gantt = document.querySelector('svg.gantt');
            return {
              ready: document.readyState,
              title: document.title,
              gantt: gantt ? box(gantt) : null,
              segments: [...document.querySelectorAll('svg.gantt rect.segment')].map(e => e.dataset.kind),
              decisions: document.querySelectorAll('svg.gantt circle.decision').length,
              charts: [...document.querySelectorAll('svg.stage-chart')].map(e => [e.dataset.stage, box(e)]),
              layers: document.querySelectorAll('svg.stage-chart polygon.layer').length,
              resources: performance.getEntriesByType('resource').map(e => e.name),
              scripts: document.scripts.length,
            };""")
        logs = requests.post(f"{session}/se/log", json={"type": "browser"}, timeout=30).json()["value"]
        shot = requests.get(f"{session}/screenshot", timeout=60).json()["value"]
        (OUT / "report.png").write_bytes(base64.b64decode(shot))
    finally:
        requests.delete(session, timeout=30)
finally:
    driver.terminate()
    driver.wait(timeout=10)

print(json.dumps(facts, indent=1))
errors = [entry for entry in logs if entry.get("level") == "SEVERE"]
assert not errors, f"console errors: {errors}"
assert facts["ready"] == "complete"
assert facts["title"].startswith("rollout run r-")
assert facts["resources"] == [], f"the page fetched {facts['resources']}"
assert facts["scripts"] == 0
assert facts["gantt"] and facts["gantt"][0] > 500 and facts["gantt"][1] > 80, facts["gantt"]
# The canary was dispatched, baked, gated and rolled back; the rest never started.
for kind in ("dispatch", "bake", "rollback"):
    assert kind in facts["segments"], (kind, facts["segments"])
assert facts["decisions"] >= 1
assert [c[0] for c in facts["charts"]] == ["canary"], facts["charts"]
assert all(w > 500 and h > 100 for _, (w, h) in facts["charts"]), facts["charts"]
assert facts["layers"] == 5
print("ok: report rendered in Chromium,", OUT / "report.png")
