#!/usr/bin/python3
"""A second, small Upswift v1 fake, written from the API contract alone (src/upswift/README.md)
(not from `rollout sim`'s code), so that the end-to-end tests do not only meet the
assumptions of our own simulator. It also plays the hostile server.

Usage: upswift_fake.py --log FILE [--seed N] [--mode MODE=SHARE ...]
Prints "listening on http://127.0.0.1:PORT/v1/" once ready; stops on SIGTERM.

The fleet: project Demo, groups Canary (6, tagged canary), EU-North (8), EU-South (8),
US (8), Rest (6); every device online, app default_app v2.3. An update is `in_progress`
when deployed and `success` UPDATE_SECONDS later (real time).

Modes, each with the share of requests it hits (0..1):
  drop_after_apply   deploy_update: apply, then close the connection without an answer
  idle_close         after an answer that promised keep-alive, close the connection anyway
                     (a server's idle timeout at a random moment)
  throttle           answer 429 {} without acting
  throttle_deploy    deploy_update only: answer 429 {} with Retry-After: 30, without acting
  error_500          answer 500 without acting
  foreign_200        deploy_update: apply, then 200 with HTML, an empty body or another shape
  echo_400           answer 400 whose error_message quotes the whole request body
  bad_utf8_400       answer 400 whose error_message holds invalid UTF-8 and control bytes
  stuck_paging       devices_details/get_devices_state: the first page again, more: true
  endless_more       devices_details/get_devices_state: more: true on every page
  slow_loris         reads: the answer's bytes one every 2 s
  dark_mid_update    deploy_update: each device it reaches takes the update and goes dark for
                     good (offline in get_devices_state, its update in_progress forever)
Targeted faults, for cases that must hit one call and no other:
  --drop-answer-to TEXT  the first deploy_update whose metadata.comment contains TEXT (a
                         stage's marker, "[rollout RUN/eu]"): applied, then its connection
                         closed without an answer, as a proxy losing that one answer would
  --fail-group GROUP[:FLOW]  updates on GROUP's devices (of FLOW only, when given: the
                         new build fails, its rollback flow works) end failed, not success
  --faults-after N       the first N requests get none of the modes' faults (a run's
                         preflight reads, say, before the faults a test means for the run)
  --fail-once TEXT=N     the first N devices to take an update whose metadata.comment
                         contains TEXT ("/eu/rollback]") have that update end failed; their
                         later updates (a retry) end as any other
Each request line of the log is JSON: endpoint, fault, applied, body (token redacted).
"""
import argparse
import json
import random
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPDATE_SECONDS = 0.3
MAX_LIMIT = 50
STATUSES = ["pending", "in_progress", "success", "failed", "aborted"]
OPERANDS = {"specific_device": {"is", "is_not"}, "tag": {"is", "is_not"}, "app": {"is", "is_not"},
            "device_state": {"is"}, "update_status": {"is", "is_not"}}

parser = argparse.ArgumentParser()
parser.add_argument("--log", required=True)
parser.add_argument("--seed", type=int, default=1)
parser.add_argument("--mode", action="append", default=[], help="MODE=SHARE")
parser.add_argument("--drop-answer-to", action="append", default=[], help="TEXT in a comment")
parser.add_argument("--fail-group", action="append", default=[], help="GROUP[:FLOW]")
parser.add_argument("--fail-once", action="append", default=[], help="TEXT=N")
parser.add_argument("--faults-after", type=int, default=0, help="N: the first N requests get no fault")
args = parser.parse_args()
fail_groups = [tuple(g.split(":", 1)) if ":" in g else (g, None) for g in args.fail_group]
fail_once = {}  # TEXT -> [devices left to fail, uuids failed so]
for f in args.fail_once:
    text, _, n = f.rpartition("=")
    fail_once[text] = [int(n), set()]
drop_answer_to = list(args.drop_answer_to)  # each drops one answer, then is spent
modes = {}
for m in args.mode:
    name, _, share = m.partition("=")
    modes[name] = float(share or 1)

lock = threading.RLock()
rng = random.Random(args.seed)
log = open(args.log, "a", buffering=1)


requests_seen = [0]


def hit(mode):
    with lock:
        if requests_seen[0] <= args.faults_after:
            return False
        return modes.get(mode, 0) > 0 and rng.random() < modes[mode]


class Device:
    def __init__(self, device_id, group, tags):
        self.device_id = device_id
        self.uuid = f"d-{device_id:04x}-{(device_id * 7919) % 65536:04x}"
        self.name = f"{group.lower()}-{device_id}"
        self.group = group
        self.tags = tags
        self.apps = {"default_app": "v2.3"}
        self.updates = []  # [update dict, completes at (monotonic), ends failed]
        self.dark = False  # went offline mid-update, never back

    def last_status(self):
        if not self.updates:
            return None
        update, done_at, fails = self.updates[-1]
        return update["update_status"] if time.monotonic() < done_at else self.finished_status(fails)

    def finished_status(self, fails):
        return "failed" if fails else "success"

    def state(self):
        return "offline" if self.dark else "online"

    def as_json(self):
        now = time.monotonic()
        updates = []
        for update, done_at, fails in self.updates:
            u = dict(update)
            if now >= done_at and u["update_status"] == "in_progress":
                u["update_status"] = self.finished_status(fails)
            updates.append(u)
        return {"device_id": self.device_id, "device_uuid": self.uuid, "device_name": self.name,
                "project": "Demo", "group": self.group, "tags": self.tags,
                "last_keepalive": 0 if self.dark else int(time.time()), "is_update_trigger_set": False,
                "updates": updates, "apps": [{"name": n, "version": v} for n, v in self.apps.items()]}


DEVICES = []
for group, count, tags in [("Canary", 6, ["canary"]), ("EU-North", 8, []), ("EU-South", 8, []),
                           ("US", 8, []), ("Rest", 6, [])]:
    for _ in range(count):
        DEVICES.append(Device(101 + len(DEVICES) * 3, group, tags))
next_update_id = [5000]


class Refusal(Exception):
    pass


def matches(device, f):
    if not isinstance(f, dict) or set(f) != {"type", "operand", "value"}:
        raise Refusal("each filter needs exactly type, operand and value")
    kind, operand, value = f["type"], f["operand"], f["value"]
    if kind not in OPERANDS:
        raise Refusal(f"unknown filter type {kind}")
    if operand not in OPERANDS[kind]:
        raise Refusal(f"operand {operand} is not allowed for {kind}")
    if not isinstance(value, str):
        raise Refusal("all values must be strings")
    if kind == "specific_device":
        hit_ = device.uuid == value
    elif kind == "tag":
        hit_ = value in device.tags
    elif kind == "app":
        hit_ = value in device.apps
    elif kind == "device_state":
        if value not in ("online", "offline"):
            raise Refusal(f"device_state is online or offline, not {value}")
        hit_ = value == device.state()
    else:
        if value not in STATUSES:
            raise Refusal(f"unknown update_status {value}")
        hit_ = device.last_status() == value
    return hit_ if operand == "is" else not hit_


def deploy(body):
    for key in ("user_token", "flow_id", "devices_filter", "metadata"):
        if key not in body:
            raise Refusal(f"{key} is missing")
    if not isinstance(body["flow_id"], str):
        raise Refusal("flow_id must be a string")
    filt = body["devices_filter"]
    project = (filt.get("project") or {}).get("name")
    if project != "Demo":
        raise Refusal(f"project {project} not found")
    if "groups" not in filt or not isinstance(filt["groups"], list):
        raise Refusal("devices_filter.groups is missing")
    groups = {g.get("name") for g in filt["groups"]}
    metadata = body["metadata"]
    if not isinstance(metadata, dict):
        raise Refusal("metadata must be an object")
    selected = []
    for d in DEVICES:
        if groups and d.group not in groups:
            continue
        if all(matches(d, f) for f in filt.get("filters", [])):
            selected.append(d)
    app = metadata.get("app")
    for d in selected:
        next_update_id[0] += 1
        # An offline device keeps its update pending; one that goes dark now, in progress.
        if not d.dark and hit("dark_mid_update"):
            d.dark = True
            status, done_at = "in_progress", float("inf")
        else:
            status, done_at = ("pending", float("inf")) if d.dark else ("in_progress", time.monotonic() + UPDATE_SECONDS)
        comment = metadata.get("comment", "")
        fails = any(d.group == g and flow in (None, body["flow_id"]) for g, flow in fail_groups)
        for text, (left, failed) in fail_once.items():
            if text in comment and left > 0 and d.uuid not in failed:
                fail_once[text][0] -= 1
                failed.add(d.uuid)
                fails = True
        d.updates.append(({"update_id": next_update_id[0], "update_status": status,
                           "update_version": app["version"] if app else "",
                           "comment": comment,
                           "deployment_schedule_time": time.strftime("%Y-%m-%d %H:%M:%S")},
                          done_at, fails))
        if app and not d.dark:
            d.apps[app["name"]] = app["version"]
    return len(selected)


def page_of(body, key_of, offset_key):
    if "user_token" not in body:
        raise Refusal("user_token is missing")
    project = body.get("project_name")
    group = body.get("group_name")
    if group is not None and project is None:
        raise Refusal("group_name needs project_name")
    limit = body.get("limit", 20)
    if not isinstance(limit, int) or limit < 1:
        raise Refusal("limit must be a positive number")
    limit = min(limit, MAX_LIMIT)
    devices = [d for d in DEVICES if (project in (None, "Demo")) and (group is None or d.group == group)]
    if project not in (None, "Demo"):
        raise Refusal(f"project {project} not found")
    offset = body.get("offset")
    start = 0
    if offset is not None:
        keys = [key_of(d) for d in devices]
        start = keys.index(offset) + 1 if offset in keys else len(devices)
    if hit("stuck_paging"):
        start = 0
        return devices[:limit], True
    chunk = devices[start:start + limit]
    more = start + limit < len(devices) or hit("endless_more")
    return chunk, more


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, status, payload, raw=None, keep_alive=True):
        data = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if raw is None else "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.path.endswith(("devices_details", "get_devices_state")) and hit("slow_loris"):
            for i in range(len(data)):
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
                time.sleep(2)
        else:
            self.wfile.write(data)
        if keep_alive and hit("idle_close"):
            self.close_connection = True  # the answer promised keep-alive; we close anyway

    def record(self, endpoint, fault, applied, body):
        redacted = dict(body) if isinstance(body, dict) else {"raw": str(body)}
        if "user_token" in redacted:
            redacted["user_token"] = "<redacted>"
        log.write(json.dumps({"endpoint": endpoint, "fault": fault, "applied": applied,
                              "body": redacted}) + "\n")

    def handle_any(self):
        with lock:
            requests_seen[0] += 1
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        endpoint = self.path.rsplit("/", 1)[-1]
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self.record(endpoint, "", False, {"raw": raw.decode(errors="replace")})
            return self.answer(400, {"error_message": "the body is not JSON"})
        if hit("throttle"):
            self.record(endpoint, "429", False, body)
            return self.answer(429, {})
        if endpoint == "deploy_update" and hit("throttle_deploy"):
            self.record(endpoint, "429", False, body)
            data = b"{}"
            self.send_response(429)
            self.send_header("Retry-After", "30")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if hit("error_500"):
            self.record(endpoint, "500", False, body)
            return self.answer(500, {"error_message": "Internal server error"})
        if hit("echo_400"):
            self.record(endpoint, "echo_400", False, body)
            return self.answer(400, {"error_message": "bad request: " + raw.decode(errors="replace")})
        if hit("bad_utf8_400"):
            self.record(endpoint, "bad_utf8_400", False, body)
            bad = b'{"error_message": "bad \xff\xfe bytes \x1b[2J\\n2026-01-01 forged line"}'
            return self.answer(400, None, raw=bad)
        try:
            if endpoint == "deploy_update" and self.command == "POST":
                with lock:
                    targeted = deploy(body)
                    comment = str((body.get("metadata") or {}).get("comment", ""))
                    targeted_drop = next((t for t in drop_answer_to if t in comment), None)
                    if targeted_drop is not None:
                        drop_answer_to.remove(targeted_drop)
                if targeted_drop is not None or hit("drop_after_apply"):
                    self.record(endpoint, "drop_after_apply", True, body)
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if hit("foreign_200"):
                    self.record(endpoint, "foreign_200", True, body)
                    return self.answer(200, None, raw=rng.choice(
                        [b"<html><body>Sign in to the network</body></html>", b"", b'{"ok": true}']))
                self.record(endpoint, "", True, body)
                return self.answer(200, {"message": "Success"})
            if endpoint == "devices_details" and self.command == "GET":
                with lock:
                    if "device_token" in body:
                        raise Refusal("device_token is not supported by this fake")
                    if "device_name" in body:
                        chunk = [d for d in DEVICES if d.name == body["device_name"]]
                        more = False
                    else:
                        chunk, more = page_of(body, lambda d: d.device_id, "offset")
                    payload = {"more": more, "message": [d.as_json() for d in chunk]}
                self.record(endpoint, "", False, body)
                return self.answer(200, payload)
            if endpoint == "get_devices_state" and self.command == "GET":
                with lock:
                    chunk, more = page_of(body, lambda d: d.uuid, "offset")
                    payload = {"more": more, "message": [{"device_uuid": d.uuid, "device_name": d.name,
                                                          "device_status": d.state()} for d in chunk]}
                self.record(endpoint, "", False, body)
                return self.answer(200, payload)
            raise Refusal(f"no endpoint {self.command} {endpoint}")
        except Refusal as e:
            self.record(endpoint, "refused", False, body)
            return self.answer(400, {"error_message": str(e)})

    do_GET = handle_any
    do_POST = handle_any


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=server.shutdown).start())
print(f"listening on http://127.0.0.1:{server.server_address[1]}/v1/", flush=True)
server.serve_forever()
