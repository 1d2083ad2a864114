#!/usr/bin/env python3
"""Seeded, client-side fault test of a 3-node presenced cluster.

    scripts/chaos.py --seconds N --seed S [--binary PATH] [--out DIR] [--users 40]
                     [--faults KIND,...] [--keep]
    (scripts/chaos.sh passes its arguments on; ctest runs it as chaos.short)

Starts three nodes on 127.0.0.1 at the same moment (fixed free cluster ports, each
with all three as `node.seeds`, `auth.mode = dev`, compressed presence thresholds
active/idle/stale/offline at 1/3/6/8 s, `cluster.failure_timeout_ms = 1000`, a
20 ms storage flush), each on its own data directory that survives its restarts.

A bounded client load runs on one selector thread (the WebSocket client of
`scripts/soak.py`): 40 users with 1-2 tabs each. A tab opens a WebSocket on some
node, says `hello`, joins its user's room (four shared rooms) and heartbeats
`active` at the server's `heartbeat_ms`, alternately over the socket and over HTTP
(`POST /v1/sessions/{sid}/signal`). A WebSocket signal is quiet (`ack` only on a
change), so the HTTP signal is the acknowledged one: its 200 carries the
session's `server_time` at which it applied the `active`. When the socket dies or
an HTTP signal gets no answer within 1.5 s, the tab resumes its session (`hello`
with `session_id` + `resume_token`) on ANOTHER live node, with a short backoff.
One watcher socket per node subscribes to every user and room (and starts over,
with fresh tracking, whenever its socket ends). Users that are both active send
each other intents (`POST /v1/intents`); the target accepts an intent when its
`intent` frame says `delivered` (or when it finds it in `GET
/v1/users/{me}/intents` after a (re)connect).

A schedule drawn from random.Random(seed) runs one fault at a time, with recovery
time between, until --seconds are used: SIGKILL a node and restart it on its data
dir; SIGSTOP a node for 1.5-2.5 s then SIGCONT (exit code 3, the minority side, is
restarted as a supervisor would); SIGKILL two nodes one after the other and
restart both; a rolling SIGTERM restart; a full-cluster restart. Only pids this
script started are signalled.

Invariants (violations counted per fault kind: the fault active or most recent):
  false_presence   a watcher gets presence away/stale/offline whose `since` lies
                   within (idle_after - 1 s) = 2 s after a server-acknowledged
                   `active` signal of one of the user's sessions (the ack's
                   server_time is in [since - 2000, since]);
  seq_repeat /     per user per watcher connection, seq never repeats or goes
  seq_backwards    backwards (a reconnected watcher starts afresh);
  no_change_event  an event with state == prev, or with seq = last + 1 and the
                   state of the previous event this connection saw;
  intent_not_final every intent created (201) ends `accepted` on every node;
  intent_regressed one socket sees an intent's status go back (delivered ->
                   pending, final -> not final);
  resume_refused   a resume answered by an error instead of `welcome`, or not
                   welcomed within 12 s of trying (only "expired", not counted: a
                   session whose last ack was already offline_after old when the
                   resume began, counting the time no node at all was up);
  convergence      within 10 s after the faults every node reports the same
                   /v1/cluster view (epoch, the 3 members up), the same state+seq
                   of every user (GET /v1/users/{id}/presence), the users active,
                   and every user among its room's members (GET /v1/rooms/{rid});
  crash            an exit the script did not cause (no SIGKILL/SIGTERM) other
                   than 0 or 3;
  unclean_stop     a SIGTERM that does not exit 0 with "storage flushed" logged
                   (rolling restarts, full restart and the final stop);
  not_ready        a (re)started node that is not ready within 30 s.

Symptoms that are not invariants are shown as notes: a refused session that a
node serves again 2-4 s later (the refusal was premature), an event whose `since`
is older than one the connection saw (stale state published), an event with seq =
last + 1 whose `prev` is not the state seen at `last` (two histories shared a seq).

Prints a table by fault kind, a diagnosis (violations grouped by fault and
pattern) and examples with the node log lines around them; on failure writes the
logs (tails and whole), the examples (violations.json) and the summary to --out
(default: a new temporary directory). A node that crashes leaves a core in its
dir (RLIMIT_CORE raised for the child) and gets a gdb backtrace after the run; a
node that hangs (no exit after SIGTERM, no HTTP answer at the final check) gets
gdb's backtraces of all its threads before it is killed. `--faults` restricts the
kinds drawn (to isolate one). Exit status 0 only if no invariant failed.

Python 3 standard library only.
"""

import argparse
import collections
import http.client
import json
import os
import queue
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no scripts/__pycache__ from importing soak
from soak import Loop, WS  # noqa: E402  (the minimal WebSocket client)

# Thresholds compressed so that a fault's effect shows within seconds.
ACTIVE_WINDOW_MS = 1000
IDLE_AFTER_MS = 3000       # away
STALE_AFTER_MS = 6000
OFFLINE_AFTER_MS = 8000
HEARTBEAT_MS = 500
FAILURE_TIMEOUT_MS = 1000
FALSE_WINDOW_MS = IDLE_AFTER_MS - 1000
ACK_TIMEOUT_S = 1.5
SECRET = "chaos-test-secret-0123456789abcdef"
INTENT_RETENTION_MS = 300_000  # a finished intent is forgotten after it (router.hpp)
NODE_IDS = ["n1", "n2", "n3"]

FAULT_KINDS = ["kill_restart", "stop_cont", "kill_two", "rolling_term", "full_restart"]
VIOLATION_KINDS = ["false_presence", "seq_repeat", "seq_backwards", "no_change_event",
                   "intent_not_final", "intent_regressed", "resume_refused", "convergence",
                   "crash", "unclean_stop", "not_ready"]
STATUS_RANK = {"pending": 0, "delivered": 1, "accepted": 2, "declined": 2, "expired": 2,
               "cancelled": 2}


def log(msg):
    print(f"chaos: {msg}", flush=True)


def wall_ms():
    return int(time.time() * 1000)


# --- the report ----------------------------------------------------------------------

class Report:
    """Violations and figures by fault kind; thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.fault = "none"          # the fault active or most recent
        self.faults_run = collections.Counter()
        self.viol = collections.defaultdict(collections.Counter)  # fault -> kind -> n
        self.seen_keys = set()
        self.examples = collections.defaultdict(list)
        self.resumes_ok = collections.Counter()
        self.resumes_refused = collections.Counter()
        self.resumes_expired = collections.Counter()
        self.intents_total = collections.Counter()
        self.intents_done = collections.Counter()
        self.stats = collections.Counter()
        self.printed = collections.Counter()
        self.notes = collections.defaultdict(list)
        self.nodes_up = None       # () -> the ids of the nodes a client could use

    def elapsed(self):
        return round(time.monotonic() - self.t0, 2)

    def violation(self, kind, key, detail, fault=None):
        """Counts a violation once per key (None: always). Returns True if new."""
        with self.lock:
            if key is not None:
                k = (kind,) + tuple(key)
                if k in self.seen_keys:
                    return False
                self.seen_keys.add(k)
            f = fault or self.fault
            self.viol[f][kind] += 1
            d = dict(detail)
            d.setdefault("fault", f)
            d.setdefault("t", self.elapsed())
            d.setdefault("wall_ms", wall_ms())
            if self.nodes_up is not None:
                d.setdefault("nodes_up", self.nodes_up())
            if len(self.examples[kind]) < 40:
                self.examples[kind].append(d)
            self.printed[kind] += 1
            if self.printed[kind] <= 5:
                short = {k: v for k, v in d.items() if k not in ("history", "log", "tail")}
                print(f"chaos: VIOLATION {kind} [{f}] t={d['t']}s {json.dumps(short)[:600]}",
                      flush=True)
            return True

    def note(self, kind, detail):
        """A symptom worth showing that is not one of the invariants."""
        with self.lock:
            if len(self.notes[kind]) < 20:
                d = dict(detail)
                d.setdefault("fault", self.fault)
                d.setdefault("t", self.elapsed())
                self.notes[kind].append(d)

    def total(self):
        return sum(sum(c.values()) for c in self.viol.values())


# --- HTTP (blocking; run on a thread pool or the main thread) ------------------------

def http_call(port, method, path, body=None, user="chaos", role=None, timeout=ACK_TIMEOUT_S):
    """(status, parsed JSON body or None); status 0 for a failure to connect or a
    timeout."""
    if not port:
        return 0, {"error": {"code": "no_port", "message": "node not up"}}
    conn = None
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        headers = {"X-User": user, "Connection": "close"}
        if role:
            headers["X-Role"] = role
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        raw = r.read()
        try:
            obj = json.loads(raw) if raw else None
        except ValueError:
            obj = None
        return r.status, obj
    except (OSError, http.client.HTTPException) as e:
        return 0, {"error": {"code": "client", "message": repr(e)}}
    finally:
        if conn is not None:
            conn.close()


class KeepAlive:
    """A keep-alive connection to one port, for the checks (main thread)."""

    def __init__(self, port, timeout=1.5):
        self.port, self.timeout, self.conn = port, timeout, None

    def get(self, path, user="chaos-checker", role=None):
        headers = {"X-User": user}
        if role:
            headers["X-Role"] = role
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                           timeout=self.timeout)
                self.conn.request("GET", path, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                try:
                    return r.status, json.loads(raw) if raw else None
                except ValueError:
                    return r.status, None
            except (OSError, http.client.HTTPException) as e:
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt == 1 or isinstance(e, TimeoutError):
                    return 0, {"error": {"code": "timeout" if isinstance(e, TimeoutError)
                                         else "client", "message": repr(e)}}
        return 0, None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# --- the nodes -----------------------------------------------------------------------

_ts_cache = {}


def parse_log_time(line):
    """Wall time (s) of a '[YYYY-mm-dd HH:MM:SS.mmm] ...' log line, or None."""
    if len(line) < 25 or line[0] != "[" or line[24] != "]":
        return None
    head = line[1:20]
    base = _ts_cache.get(head)
    if base is None:
        try:
            base = time.mktime(time.strptime(head, "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            return None
        if len(_ts_cache) > 100000:
            _ts_cache.clear()
        _ts_cache[head] = base
    try:
        return base + int(line[21:24]) / 1000.0
    except ValueError:
        return None


class Node:
    """One presenced, restarted on the same data dir and cluster port."""

    def __init__(self, nid, cport, workdir, binary, report):
        self.id, self.cport, self.binary, self.report = nid, cport, binary, report
        self.dir = os.path.join(workdir, nid)
        os.makedirs(self.dir, exist_ok=True)
        self.data_dir = os.path.join(self.dir, "db")
        self.log_path = os.path.join(self.dir, "presenced.log")
        self.seeds = ""
        self.proc = None
        self.port = 0
        self.ready = False
        self.stopped = False       # SIGSTOPped by us and not yet continued
        self.inc = 0               # incarnation
        self.sent = set()          # signals sent to the current incarnation
        self.lines = collections.deque(maxlen=400000)  # (wall s, incarnation, text)
        self.exited_at = None      # monotonic time of an exit the supervisor handles
        self.needs_restart = False
        self.started_at = 0.0
        self.exits = []            # (incarnation, rc, sorted signals)
        self.cores = []            # (incarnation, path, violation detail)
        self.dumps = []            # (incarnation, thread dump summary) of hung nodes
        self.signalled = []        # (wall ms, signal name) of every signal sent
        self.lock = threading.Lock()

    def args(self):
        return [self.binary, f"--node.id={self.id}", "--node.bind=127.0.0.1",
                "--node.http_port=0", f"--node.cluster_port={self.cport}",
                f"--node.data_dir={self.data_dir}", f"--node.seeds={self.seeds}",
                "--auth.mode=dev", f"--auth.secret={SECRET}",
                f"--cluster.failure_timeout_ms={FAILURE_TIMEOUT_MS}",
                f"--presence.active_window_ms={ACTIVE_WINDOW_MS}",
                f"--presence.idle_after_ms={IDLE_AFTER_MS}",
                f"--presence.stale_after_ms={STALE_AFTER_MS}",
                f"--presence.offline_after_ms={OFFLINE_AFTER_MS}",
                f"--presence.heartbeat_active_ms={HEARTBEAT_MS}",
                "--presence.heartbeat_idle_ms=1000",
                "--presence.heartbeat_background_ms=2000",
                "--storage.flush_interval_ms=20"]

    def start(self):
        with self.lock:
            self.inc += 1
            inc = self.inc
            self.port = 0
            self.ready = False
            self.stopped = False
            self.sent = set()
            self.needs_restart = False
            self.exited_at = None
            self.started_at = time.monotonic()
            with open(self.log_path, "a") as f:
                f.write(f"----- chaos: start #{inc} of {self.id} at t={self.report.elapsed()}s "
                        f"(fault {self.report.fault}) -----\n")
            self.proc = subprocess.Popen(self.args(), stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, cwd=self.dir,
                                         preexec_fn=allow_core_dumps)
            proc, sent = self.proc, self.sent
        threading.Thread(target=self._read, args=(proc, inc, sent), daemon=True).start()

    def _read(self, proc, inc, sent):
        text = []
        with open(self.log_path, "a") as logf:
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                logf.write(line + "\n")
                logf.flush()
                t = parse_log_time(line) or time.time()
                self.lines.append((t, inc, line))
                if len(text) < 200000:
                    text.append(line)
                if inc != self.inc:
                    continue
                if not self.port and "http listening on " in line:
                    try:
                        self.port = int(line.split("http listening on ", 1)[1]
                                        .split()[0].rsplit(":", 1)[1])
                    except (ValueError, IndexError):
                        pass
                if "] ready" in line:
                    self.ready = True
        rc = proc.wait()
        self._exited(proc, inc, rc, sent, text)

    def _exited(self, proc, inc, rc, sent, text):
        flushed = any("storage flushed" in x for x in text)
        minority = any("minority side" in x for x in text)
        with self.lock:
            self.exits.append((inc, rc, sorted(sent)))
            if inc == self.inc:
                self.ready = False
                self.port = 0
        tail = text[-40:]
        detail = {"node": self.id, "incarnation": inc, "exit": rc, "signals": sorted(sent),
                  "storage_flushed": flushed, "tail": tail}
        if rc < 0 and -rc in (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGFPE,
                              signal.SIGILL):
            for name in ("core", f"core.{proc.pid}"):
                path = os.path.join(self.dir, name)
                if os.path.exists(path):
                    kept = os.path.join(self.dir, f"core.{self.id}.{inc}")
                    os.rename(path, kept)
                    detail["core"] = kept
                    self.cores.append((inc, kept, detail))
                    break
        if "KILL" in sent:
            self.report.stats["exit_after_sigkill"] += 1
        elif "TERM" in sent:
            if rc == 0 and flushed:
                self.report.stats["clean_sigterm_exits"] += 1
            elif rc == 3 and flushed and minority:
                # It stopped by itself (the minority side) as our SIGTERM came.
                self.report.stats["sigterm_raced_minority_exit"] += 1
            else:
                self.report.violation("unclean_stop", None, detail)
        else:
            if rc == 3:
                self.report.stats["minority_exits"] += 1
            elif rc == 0:
                self.report.stats["unprompted_exit_0"] += 1
            else:
                self.report.violation("crash", None, detail)
        log(f"{self.id} (#{inc}) exited {rc} (signals {sorted(sent) or '-'}, "
            f"storage flushed: {'yes' if flushed else 'no'})")
        if "KILL" not in sent and "TERM" not in sent and inc == self.inc:
            # A supervisor (systemd Restart=on-failure, a pod) starts it again.
            self.exited_at = time.monotonic()
            self.needs_restart = True

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def up(self):
        """Serving as far as a client can tell: running, ready, not stopped."""
        return self.ready and self.port and not self.stopped and self.alive()

    def signal(self, sig):
        names = {signal.SIGKILL: "KILL", signal.SIGTERM: "TERM", signal.SIGSTOP: "STOP",
                 signal.SIGCONT: "CONT"}
        self.signalled.append((wall_ms(), names.get(sig, str(sig))))
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                return False
            self.sent.add(names.get(sig, str(sig)))
            if sig == signal.SIGSTOP:
                self.stopped = True
            elif sig == signal.SIGCONT:
                self.stopped = False
            elif sig in (signal.SIGKILL, signal.SIGTERM):
                self.ready = False
            try:
                os.kill(self.proc.pid, sig)  # only the pid this script started
            except ProcessLookupError:
                return False
        return True

    def dump_threads(self, why):
        """gdb's backtraces of every thread of a live node that hangs (once per
        incarnation); the file goes to the node's dir, a summary to self.dumps."""
        if not self.alive() or not shutil.which("gdb") or \
                any(inc == self.inc for inc, _ in self.dumps):
            return
        path = os.path.join(self.dir, f"threads.{self.id}.{self.inc}.txt")
        try:
            out = subprocess.run(["gdb", "-p", str(self.proc.pid), "-batch", "-nx",
                                  "-ex", "set pagination off",
                                  "-ex", "thread apply all bt 30"],
                                 capture_output=True, text=True, timeout=120).stdout
        except (OSError, subprocess.TimeoutExpired) as e:
            out = f"gdb failed: {e!r}"
        with open(path, "w") as f:
            f.write(f"{self.id} #{self.inc}: {why}\n{out}")
        # Per thread: its first frames in the project's code.
        summary, cur = [], None
        for line in out.splitlines():
            if line.startswith("Thread "):
                cur = [line[:120]]
                summary.append(cur)
            elif line.startswith("#") and cur is not None and len(cur) < 4 and \
                    ("presence::" in line or "caf::" in line or "wait" in line or "lock" in line):
                cur.append(line[:220])
        self.dumps.append((self.inc, {"file": path, "why": why,
                                      "threads": [" | ".join(t) for t in summary]}))
        log(f"{self.id} (#{self.inc}) {why}: thread dump in {path}")

    def wait_exit(self, timeout):
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def log_between(self, t_from, t_to, terms=(), limit=30):
        """Log lines with a time in [t_from, t_to] (wall s) that name one of `terms`
        or a cluster event."""
        keys = ("cluster", "minority", "lost", "promot", "reconcil", "recover", "ready",
                "received", "error", "warn", "handoff", "hand-off", "stopped")
        noise = ("open file limit", "auth.mode")
        out = []
        for t, inc, line in list(self.lines):
            if t < t_from or t > t_to:
                continue
            low = line.lower()
            if any(x in line for x in noise):
                continue
            if any(x and x in line for x in terms) or any(k in low for k in keys):
                out.append(f"{self.id}#{inc} {line}")
        if len(out) > limit:
            out = out[:limit // 2] + [f"... {len(out) - limit} lines ..."] + out[-limit // 2:]
        return out


def allow_core_dumps():
    """In the child: a crash leaves a core in the node's dir (for a backtrace)."""
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_CORE)
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
    except (ValueError, OSError):
        pass


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


# --- the client load (one selector thread) ------------------------------------------

class Intent:
    def __init__(self, iid):
        self.iid = iid
        self.from_user = self.to_user = None
        self.created = False       # a 201 said so
        self.fault = None
        self.created_t = None
        self.created_ms = None
        self.accepted = False
        self.accepted_ms = None    # wall ms when the harness saw its accept answered
        self.accept_inflight = False
        self.accept_tries = 0
        self.final_other = None    # a final status other than accepted
        self.history = []          # (t, status, socket)


class Tab:
    """One browser tab: a session over a WebSocket, heartbeating `active`."""

    def __init__(self, load, user, k):
        self.load, self.user, self.name = load, user, f"{user}/{k}"
        self.sid = self.token = None
        self.gw = None
        self.ws = None
        self.gen = 0
        self.phase = "down"        # connecting | hello | live | down
        self.hello_kind = None     # new | resume
        self.episode = None        # an ongoing resume: {start, fault, attempts, prev, reason}
        self.last_ack_ms = 0       # server time of the latest acknowledged signal/creation
        self.last_ack_mono = 0.0
        self.beats = 0
        self.joined = False
        self.hb = HEARTBEAT_MS / 1000.0

    # connection
    def connect(self, node):
        L = self.load
        if L.stopping:
            return
        self.gen += 1
        gen = self.gen
        if node is None:
            self.phase = "down"
            L.loop.call_later(0.3, lambda: self.attempt(gen))
            return
        self.gw = node
        self.phase = "connecting"
        self.ws = WS(L.loop, node.port, self.user,
                     on_open=lambda ws: self.on_open(ws, gen),
                     on_text=lambda ws, f: self.on_text(ws, gen, f),
                     on_end=lambda ws: self.on_end(ws, gen), stats=L.wsstats)

    def on_open(self, ws, gen):
        if gen != self.gen:
            return
        self.phase = "hello"
        if self.sid:
            self.hello_kind = "resume"
            ws.send_json({"op": "hello", "session_id": self.sid, "resume_token": self.token,
                          "device": "chaos", "signal": "active"})
        else:
            self.hello_kind = "new"
            ws.send_json({"op": "hello", "device": "chaos"})

    def on_end(self, ws, gen):
        if gen != self.gen or self.load.stopping:
            return
        if self.episode is not None:
            self.episode.setdefault("errors", []).append(
                (round(time.monotonic() - self.episode["start"], 2),
                 self.gw.id if self.gw else None,
                 f"socket ended while {self.phase} (close {ws.close_code})"))
        self.begin_resume("socket_ended")

    def begin_resume(self, reason):
        L = self.load
        L.report.stats[f"tab_trouble_{reason}"] += 1
        if self.sid and self.episode is None:
            self.episode = {"start": time.monotonic(), "fault": L.report.fault, "attempts": 0,
                            "prev": self.gw.id if self.gw else None, "reason": reason,
                            "tried": [], "age_at_start_ms": wall_ms() - self.last_ack_ms,
                            "no_node_s": 0.0}
        self.gen += 1
        gen = self.gen
        self.phase = "down"
        if self.ws is not None and not self.ws.ended:
            self.ws.drop()
        n = self.episode["attempts"] if self.episode else 0
        delay = L.rng.uniform(0, 0.1) if n == 0 else \
            min(1.0, 0.1 * (2 ** n)) * L.rng.uniform(0.5, 1.0)
        L.loop.call_later(delay, lambda: self.attempt(gen))

    def attempt(self, gen):
        L = self.load
        if gen != self.gen or L.stopping:
            return
        ep = self.episode
        if ep is not None and time.monotonic() - ep["start"] > 12:
            last = (ep.get("errors") or [("", "", "none")])[-1][2]
            self.refused(f"no welcome within 12 s (last error: {last})", None)
            ep = None  # a new session from now on
        exclude = None
        if ep is not None:
            exclude = ep["prev"] if ep["attempts"] == 0 else (self.gw.id if self.gw else None)
            ep["attempts"] += 1
        node = L.pick_node(exclude)
        if ep is not None and node is not None:
            ep["tried"].append(node.id)
        elif ep is not None:
            ep["no_node_s"] += 0.3  # connect(None) tries again in 0.3 s
        self.connect(node)

    def refused(self, code, frame):
        """A resume ended without `welcome`: refused, or expired if the session had
        no acknowledged signal for offline_after."""
        L = self.load
        ep = self.episode or {"fault": L.report.fault, "start": time.monotonic(),
                              "reason": "?", "tried": [], "no_node_s": 0.0,
                              "age_at_start_ms": wall_ms() - self.last_ack_ms}
        age = wall_ms() - self.last_ack_ms
        # Expired, not refused: the session had no acknowledged signal for
        # offline_after by the client's doing or because no node was up at all.
        # Time spent being answered "unavailable" by a live node is the server's.
        excused = ep["age_at_start_ms"] + 1000 * ep["no_node_s"]
        if excused >= OFFLINE_AFTER_MS - 500:
            L.report.resumes_expired[ep["fault"]] += 1
            L.report.note("resume_of_expired_session", {
                "tab": self.name, "session_id": self.sid, "code": code,
                "last_ack_age_ms": age, "why_resuming": ep.get("reason"),
                "resuming_for_s": round(time.monotonic() - ep["start"], 2),
                "tried": ep.get("tried"), "errors_meanwhile": ep.get("errors", [])[-6:]})
        else:
            L.report.resumes_refused[ep["fault"]] += 1
            L.report.violation("resume_refused", (self.sid,), {
                "tab": self.name, "session_id": self.sid, "code": code,
                "answer": frame, "gateway": self.gw.id if self.gw else None,
                "tried": ep.get("tried"), "why_resuming": ep.get("reason"),
                "last_ack_age_ms": age, "resuming_for_s": round(time.monotonic() - ep["start"], 2),
                "no_node_up_s": round(ep["no_node_s"], 1),
                "errors_meanwhile": ep.get("errors", [])[-6:],
                "server_ms": wall_ms()}, fault=ep["fault"])
            self.later_check(self.sid, ep["fault"])
        self.episode = None
        self.sid = self.token = None
        self.joined = False

    def later_check(self, sid, fault):
        """Whether a session refused as not found is found again a moment later."""
        L = self.load

        def look(n):
            node = L.pick_node()
            if node is None or L.stopping:
                return

            def done(status, body):
                if status == 200:
                    L.report.stats["refused_sessions_found_later"] += 1
                    L.report.note("refused_session_found_later", {
                        "session_id": sid, "tab": self.name, "found_via": node.id,
                        "after_s": n, "view": body, "refused_during": fault})
                elif n < 4:
                    L.loop.call_later(2.0, lambda: look(n + 2))
            L.http(node, "GET", f"/v1/sessions/{sid}", None, self.user, done, timeout=3.0)
        L.loop.call_later(2.0, lambda: look(2))

    # frames
    def on_text(self, ws, gen, f):
        if gen != self.gen:
            return
        L = self.load
        op = f.get("op")
        if op == "welcome":
            self.phase = "live"
            self.sid, self.token = f.get("session_id"), f.get("resume_token")
            hb = f.get("heartbeat_ms") or HEARTBEAT_MS
            self.hb = max(0.1, min(hb, HEARTBEAT_MS) / 1000.0)
            if f.get("resumed"):
                ep = self.episode
                L.report.resumes_ok[ep["fault"] if ep else L.report.fault] += 1
                L.report.stats["resumes_ok"] += 1
            else:
                L.report.stats["sessions_opened"] += 1
                self.last_ack_ms = max(self.last_ack_ms, f.get("server_time", 0))
                self.joined = False
                ws.send_json({"op": "join", "room": L.room_of[self.user]})
            self.episode = None
            L.loop.call_later(self.hb * L.rng.uniform(0.2, 1.0), lambda: self.beat(gen))
            L.loop.call_later(0.3, lambda: L.fetch_intents(self, gen))
        elif op == "error":
            code = f.get("code")
            L.report.stats[f"tab_error_{code}_{self.phase}"] += 1
            if self.phase == "hello":
                if self.hello_kind == "resume" and code in ("session_not_found", "forbidden"):
                    self.refused(code, f)
                    self.hello_kind = "new"
                    ws.send_json({"op": "hello", "device": "chaos"})
                else:
                    if self.episode is not None:
                        self.episode.setdefault("errors", []).append(
                            (round(time.monotonic() - self.episode["start"], 2),
                             self.gw.id if self.gw else None, code))
                    self.begin_resume(f"hello_error_{code}")
            elif self.phase == "live":
                if code == "session_not_found":
                    # The session ended under the socket: try to resume it elsewhere.
                    self.begin_resume("session_ended_under_socket")
        elif op == "subscribed":
            for r in f.get("rooms", []):
                if r.get("room_id") == L.room_of[self.user]:
                    self.joined = True
        elif op == "intent":
            L.on_intent_frame(self, gen, f.get("intent") or {})
        elif op == "ack":
            L.report.stats["ws_acks"] += 1

    def beat(self, gen):
        L = self.load
        if gen != self.gen or self.phase != "live" or L.stopping:
            return
        self.beats += 1
        if self.beats % 2 == 1:
            self.ws.send_json({"op": "signal", "signal": "active"})
            L.report.stats["ws_signals"] += 1
        else:
            sid, gw = self.sid, self.gw

            def done(status, body):
                if status == 200 and isinstance(body, dict):
                    st = body.get("server_time", 0)
                    L.acks[self.user].append((st, body.get("state"), self.name, sid, gw.id))
                    self.last_ack_ms = max(self.last_ack_ms, st)
                    self.last_ack_mono = time.monotonic()
                    L.report.stats["http_signals_acked"] += 1
                    return
                L.report.stats[f"http_signal_{status}"] += 1
                if gen != self.gen or status == 429:
                    return
                self.begin_resume(f"signal_{status}")

            L.http(gw, "POST", f"/v1/sessions/{sid}/signal", {"signal": "active"}, self.user,
                   done)
        if not self.joined and self.beats % 4 == 0:
            self.ws.send_json({"op": "join", "room": L.room_of[self.user]})
        L.loop.call_later(self.hb, lambda: self.beat(gen))


class Watcher:
    """One socket on one node subscribed to every user and room; checks what it
    gets. A new connection starts its tracking afresh."""

    def __init__(self, load, node):
        self.load, self.node = load, node
        self.gen = 0
        self.conn_no = 0
        self.ws = None
        self.last = {}
        self.hist = {}

    def connect(self):
        L = self.load
        if L.stopping:
            return
        if not self.node.up():
            L.loop.call_later(0.3, self.connect)
            return
        self.gen += 1
        self.conn_no += 1
        gen = self.gen
        self.last = {}
        self.hist = collections.defaultdict(lambda: collections.deque(maxlen=10))
        self.ws = WS(L.loop, self.node.port, f"watch-{self.node.id}",
                     on_open=lambda ws: ws.send_json({"op": "hello", "device": "watcher",
                                                      "signal": "background"}),
                     on_text=lambda ws, f: self.on_text(ws, gen, f),
                     on_end=lambda ws: self.on_end(gen), stats=L.wsstats)

    def on_end(self, gen):
        if gen != self.gen or self.load.stopping:
            return
        self.load.report.stats["watcher_reconnects"] += 1
        self.gen += 1
        self.load.loop.call_later(0.3, self.connect)

    def beat(self, gen):
        if gen != self.gen or self.ws.ended:
            return
        self.ws.send_json({"op": "signal", "signal": "background"})
        self.load.loop.call_later(2.0, lambda: self.beat(gen))

    def on_text(self, ws, gen, f):
        if gen != self.gen:
            return
        L = self.load
        op = f.get("op")
        if op == "presence":
            self.on_presence(f)
        elif op == "welcome":
            ws.send_json({"op": "subscribe", "users": L.users, "rooms": L.rooms})
            L.loop.call_later(2.0, lambda: self.beat(gen))
        elif op == "subscribed":
            for v in f.get("users", []):
                u, seq = v.get("user_id"), v.get("seq", 0)
                if u not in L.user_set:
                    continue
                self.hist[u].append(("snapshot", seq, v.get("state"), None, v.get("since"),
                                     L.report.elapsed()))
                last = self.last.get(u)
                if last is None or seq > last[0]:
                    self.last[u] = (seq, v.get("state"), v.get("since"))
        elif op == "error":
            code = f.get("code")
            L.report.stats[f"watcher_error_{code}"] += 1
            if code == "unavailable" and f.get("topics"):
                users = [t["user"] for t in f["topics"] if "user" in t]
                rooms = [t["room"] for t in f["topics"] if "room" in t]
                L.loop.call_later(0.5, lambda: self.resubscribe(gen, users, rooms))
            elif code == "session_not_found":
                ws.send_json({"op": "hello", "device": "watcher", "signal": "background"})

    def resubscribe(self, gen, users, rooms):
        if gen == self.gen and not self.ws.ended:
            self.ws.send_json({"op": "subscribe", "users": users, "rooms": rooms})

    def on_presence(self, f):
        L = self.load
        u = f.get("user_id")
        if u not in L.user_set:
            return
        seq, st, prev, since = f.get("seq", -1), f.get("state"), f.get("prev"), f.get("since", 0)
        h = self.hist[u]
        h.append(("event", seq, st, prev, since, L.report.elapsed()))
        last = self.last.get(u)
        base = {"user": u, "watcher": self.node.id, "connection": self.conn_no, "event": f,
                "history": [list(x) for x in h], "server_ms": since, "received_ms": wall_ms()}
        if last is not None and since and last[2] and since < last[2]:
            # Not an invariant of the list, a symptom: the node published a state
            # older than one this connection already saw.
            L.report.stats["events_since_backwards"] += 1
            L.report.note("since_backwards", dict(base))
        if st == prev:
            L.report.violation("no_change_event", (u, seq, st), base)
        if last is not None:
            if seq == last[0]:
                L.report.violation("seq_repeat", (self.node.id, self.conn_no, u, seq), base)
            elif seq < last[0]:
                L.report.violation("seq_backwards", (self.node.id, self.conn_no, u, seq), base)
            elif seq == last[0] + 1 and st == last[1] and st != prev:
                L.report.violation("no_change_event", (u, seq, st), base)
            elif seq == last[0] + 1 and prev != last[1]:
                # seq + 1 after a state this connection saw, but the event names
                # another predecessor: two histories used the same seq.
                L.report.stats["events_prev_mismatch"] += 1
                L.report.note("prev_mismatch", dict(base))
        if last is None or seq > last[0]:
            self.last[u] = (seq, st, since)
        L.report.stats["watcher_events"] += 1
        if st in ("away", "stale", "offline"):
            # Acks still in flight (1.5 s at most) land first.
            fault = L.report.fault
            L.loop.call_later(ACK_TIMEOUT_S + 0.3,
                              lambda: L.check_false_presence(u, f, base, fault))


class Load:
    def __init__(self, nodes, report, seed, n_users, n_rooms=4):
        self.nodes, self.report = nodes, report
        self.loop = Loop()
        self.inbox = queue.SimpleQueue()
        self.pool = ThreadPoolExecutor(max_workers=48)
        self.rng = random.Random(seed * 7919 + 17)
        self.users = [f"u{i:02d}" for i in range(n_users)]
        self.user_set = set(self.users)
        self.rooms = [f"room{i}" for i in range(n_rooms)]
        self.room_of = {u: self.rooms[i % n_rooms] for i, u in enumerate(self.users)}
        self.tabs = []
        for u in self.users:
            for k in range(1 + (self.rng.random() < 0.5)):
                self.tabs.append(Tab(self, u, k))
        self.tabs_of = collections.defaultdict(list)
        for t in self.tabs:
            self.tabs_of[t.user].append(t)
        self.watchers = [Watcher(self, n) for n in nodes]
        self.acks = collections.defaultdict(lambda: collections.deque(maxlen=64))
        self.intents = {}
        self.socket_intent_rank = {}
        self.creating = True
        self.stopping = False
        self.wsstats = collections.Counter()
        self.thread = None

    # plumbing
    def post(self, fn):
        """Runs fn on the load's thread (thread-safe)."""
        self.inbox.put(fn)

    def _drain(self):
        while True:
            try:
                fn = self.inbox.get_nowait()
            except queue.Empty:
                break
            try:
                fn()
            except Exception as e:  # a harness bug must not end the run silently
                print(f"chaos: load callback error: {e!r}", file=sys.stderr)
                self.report.stats["harness_callback_errors"] += 1
        if not self.stopping:
            self.loop.call_later(0.02, self._drain)

    def http(self, node, method, path, body, user, cb, timeout=ACK_TIMEOUT_S, role=None):
        port = node.port if node is not None and node.alive() else 0
        try:
            fut = self.pool.submit(http_call, port, method, path, body, user, role, timeout)
        except RuntimeError:
            return
        fut.add_done_callback(lambda f: self.inbox.put(lambda: cb(*f.result())))

    def pick_node(self, exclude=None):
        up = [n for n in self.nodes if n.up()]
        others = [n for n in up if n.id != exclude]
        pool = others or up
        return self.rng.choice(pool) if pool else None

    # lifecycle
    def start(self):
        for i, t in enumerate(self.tabs):
            self.loop.call_later(2.0 * i / len(self.tabs),
                                 lambda t=t: t.connect(self.pick_node()))
        for w in self.watchers:
            self.loop.call_later(0.1, w.connect)
        self.loop.call_later(1.5, self.create_intent)
        self.loop.call_later(0.02, self._drain)
        self.thread = threading.Thread(target=self.loop.run, args=(time.monotonic() + 1e6,),
                                       daemon=True)
        self.thread.start()

    def stop(self):
        def finish():
            self.stopping = True
            for t in self.tabs:
                if t.ws is not None and not t.ws.ended:
                    t.ws.drop()
            for w in self.watchers:
                if w.ws is not None and not w.ws.ended:
                    w.ws.drop()
            self.loop.stopping = True
        self.post(finish)
        if self.thread:
            self.thread.join(10)
        self.pool.shutdown(wait=False)

    # presence
    def check_false_presence(self, u, f, base, fault):
        since = f.get("since", 0)
        for st_ms, state, tab, sid, gw in list(self.acks[u]):
            if state == "active" and since - FALSE_WINDOW_MS <= st_ms <= since:
                d = dict(base)
                d["ack"] = {"server_time": st_ms, "tab": tab, "session_id": sid,
                            "via": gw, "ms_before_since": since - st_ms}
                self.report.violation("false_presence", (u, f.get("seq"), f.get("state")), d,
                                      fault=fault)
                return

    def tab_states(self, u):
        """What the client side knows of a user's tabs (read from another thread: a
        snapshot for the report only)."""
        out = []
        for t in list(self.tabs_of[u]):
            out.append({"tab": t.name, "phase": t.phase, "session_id": t.sid,
                        "gateway": t.gw.id if t.gw else None,
                        "last_ack_age_ms": wall_ms() - t.last_ack_ms if t.last_ack_ms else None,
                        "resuming": bool(t.episode)})
        return out

    def user_active(self, u):
        now = time.monotonic()
        return any(t.phase == "live" and now - t.last_ack_mono < 1.2 for t in self.tabs_of[u])

    # intents
    def create_intent(self):
        if self.stopping:
            return
        if self.creating:
            active = [u for u in self.users if self.user_active(u)]
            if len(active) >= 2:
                a, b = self.rng.sample(active, 2)
                tab = next((t for t in self.tabs_of[a] if t.phase == "live"), None)
                fault = self.report.fault
                t_req = self.report.elapsed()

                def done(status, body):
                    if status == 201 and isinstance(body, dict) and body.get("intent_id"):
                        rec = self.intents.setdefault(body["intent_id"],
                                                      Intent(body["intent_id"]))
                        rec.from_user, rec.to_user = a, b
                        rec.created, rec.fault, rec.created_t = True, fault, t_req
                        rec.created_ms = body.get("created_at") or wall_ms()
                        rec.history.append((t_req, body.get("status"), "create"))
                        self.report.intents_total[fault] += 1
                        self.report.stats["intents_created"] += 1
                    else:
                        self.report.stats[f"intent_create_{status}"] += 1

                if tab is not None:
                    self.http(tab.gw, "POST", "/v1/intents", {"to_user": b}, a, done, timeout=3.0)
        self.loop.call_later(self.rng.uniform(0.25, 0.5), self.create_intent)

    def on_intent_frame(self, tab, gen, v):
        iid = v.get("intent_id")
        if not iid:
            return
        status = v.get("status")
        rec = self.intents.setdefault(iid, Intent(iid))
        if rec.from_user is None:
            rec.from_user, rec.to_user = v.get("from_user"), v.get("to_user")
        sock = (tab.name, gen)
        rec.history.append((self.report.elapsed(), status, f"{tab.name}@{tab.gw.id}#{gen}"))
        rank = STATUS_RANK.get(status, -1)
        last = self.socket_intent_rank.get((iid, sock))
        if last is not None and rank < last[0]:
            self.report.violation("intent_regressed", (iid, tab.name, gen), {
                "intent_id": iid, "socket": f"{tab.name} via {tab.gw.id}",
                "from": last[1], "to": status, "intent": v,
                "history": rec.history[-10:], "server_ms": wall_ms()})
        if last is None or rank >= last[0]:
            self.socket_intent_rank[(iid, sock)] = (rank, status)
        if status in ("declined", "expired", "cancelled"):
            rec.final_other = status
        if status == "delivered" and v.get("to_user") == tab.user:
            self.accept(rec)

    def accept(self, rec):
        if rec.accepted or rec.accept_inflight or self.stopping or rec.final_other:
            return
        tab = next((t for t in self.tabs_of.get(rec.to_user, []) if t.phase == "live"), None)
        if tab is None:
            self.loop.call_later(0.5, lambda: self.accept(rec))
            return
        rec.accept_inflight = True
        rec.accept_tries += 1

        def done(status, body):
            rec.accept_inflight = False
            if status == 200:
                rec.accepted = True
                rec.accepted_ms = int(time.time() * 1000)
                rec.history.append((self.report.elapsed(), "accept-200", tab.gw.id))
                return
            msg = json.dumps(body)[:200] if body else ""
            rec.history.append((self.report.elapsed(), f"accept-{status} {msg}", tab.gw.id))
            self.report.stats[f"intent_accept_{status}"] += 1
            if status == 409 and "already accepted" in msg:
                rec.accepted = True
                return
            if status == 409:
                return  # final otherwise: the end check reports it
            self.loop.call_later(1.0, lambda: self.accept(rec))

        self.http(tab.gw, "POST", f"/v1/intents/{rec.iid}/accept", None, rec.to_user, done,
                  timeout=3.0)

    def fetch_intents(self, tab, gen):
        """After a (re)connect: the target's delivered intents it may have missed."""
        if gen != tab.gen or tab.phase != "live" or self.stopping:
            return

        gw = tab.gw.id

        def done(status, body):
            if status != 200 or not isinstance(body, dict):
                return
            listed = {}
            for v in body.get("incoming", []):
                iid = v.get("intent_id")
                listed[iid] = v.get("status")
                rec = self.intents.get(iid)
                if rec is not None and v.get("status") == "delivered":
                    self.accept(rec)
            # What the target's own list said of its open intents (for the report).
            for rec in self.intents.values():
                if rec.to_user == tab.user and rec.created and not rec.accepted:
                    rec.history.append((self.report.elapsed(),
                                        f"GET incoming of {tab.user}: "
                                        f"{listed.get(rec.iid, 'not listed')}", gw))

        self.http(tab.gw, "GET", f"/v1/users/{tab.user}/intents", None, tab.user, done,
                  timeout=3.0)

    def sweep_intents(self):
        """Once, at the end of the faults: every user reads its incoming intents."""
        for u in self.users:
            tab = next((t for t in self.tabs_of[u] if t.phase == "live"), None)
            if tab is not None:
                self.fetch_intents(tab, tab.gen)


# --- the harness ---------------------------------------------------------------------

class Chaos:
    def __init__(self, args):
        self.args = args
        self.report = Report()
        self.rng = random.Random(args.seed)
        self.workdir = tempfile.mkdtemp(prefix="presenced-chaos-")
        ports = sorted(free_ports(3))
        self.nodes = [Node(NODE_IDS[i], ports[i], self.workdir, args.binary, self.report)
                      for i in range(3)]
        seeds = ",".join(f"127.0.0.1:{p}" for p in ports)
        for n in self.nodes:
            n.seeds = seeds
        self.load = None
        self.fault_log = []   # (t, kind, description)
        self.kinds = [k for k in FAULT_KINDS if k in args.faults.split(",")]
        self.report.nodes_up = lambda: [n.id for n in self.nodes if n.up()]

    # waiting while supervising
    def supervise(self):
        for n in self.nodes:
            if n.needs_restart and n.exited_at is not None and \
                    time.monotonic() - n.exited_at >= 0.5:
                log(f"supervisor: restarting {n.id} (it exited by itself)")
                self.report.stats["supervisor_restarts"] += 1
                n.start()

    def sleep(self, seconds):
        end = time.monotonic() + seconds
        while True:
            self.supervise()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.1, left))

    def wait_ready(self, nodes, timeout=30.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.supervise()
            if all(n.ready and n.alive() and not n.stopped for n in nodes):
                return True
            time.sleep(0.05)
        for n in nodes:
            if not (n.ready and n.alive()):
                self.report.violation("not_ready", None, {
                    "node": n.id, "incarnation": n.inc, "alive": n.alive(),
                    "waited_s": timeout,
                    "tail": [x[2] for x in list(n.lines)[-30:]]})
        return False

    def views(self):
        out = {}
        for n in self.nodes:
            s, b = http_call(n.port, "GET", "/v1/cluster", user="chaos-admin", role="admin",
                             timeout=2.0)
            if s == 200 and isinstance(b, dict):
                out[n.id] = (b.get("epoch"), tuple(sorted(x.get("id") for x in b.get("nodes", []))),
                             tuple(sorted((x.get("id"), x.get("status"))
                                          for x in b.get("nodes", []))))
            else:
                out[n.id] = ("error", s, json.dumps(b)[:200])
        return out

    def views_agree(self, v):
        vals = set(v.values())
        if len(vals) != 1:
            return False
        epoch, ids, sts = next(iter(vals))
        return epoch != "error" and ids == tuple(NODE_IDS) and all(s == "up" for _, s in sts)

    def wait_converged(self, timeout):
        end = time.monotonic() + timeout
        v = {}
        while time.monotonic() < end:
            self.supervise()
            if all(n.up() for n in self.nodes):
                v = self.views()
                if self.views_agree(v):
                    return True, v
            time.sleep(0.2)
        return False, v

    # faults
    def begin_fault(self, kind, desc):
        self.report.fault = kind
        self.report.faults_run[kind] += 1
        self.fault_log.append((self.report.elapsed(), kind, desc))
        log(f"t={self.report.elapsed():.1f}s fault {kind}: {desc}")

    def fault_kill_restart(self):
        x = self.rng.choice(self.nodes)
        down = self.rng.uniform(1.5, 3.0)
        self.begin_fault("kill_restart", f"SIGKILL {x.id}, restart after {down:.1f}s")
        x.signal(signal.SIGKILL)
        x.wait_exit(5)
        self.sleep(down)
        x.start()
        self.wait_ready([x])

    def fault_stop_cont(self):
        x = self.rng.choice(self.nodes)
        hang = self.rng.uniform(1.5, 2.5)
        self.begin_fault("stop_cont", f"SIGSTOP {x.id} for {hang:.1f}s, then SIGCONT")
        x.signal(signal.SIGSTOP)
        self.sleep(hang)
        x.signal(signal.SIGCONT)
        # It may find itself on the minority side and exit 3: the supervisor
        # restarts it.
        self.sleep(3.0)
        self.wait_ready([x])

    def fault_kill_two(self):
        x, y = self.rng.sample(self.nodes, 2)
        gap = self.rng.uniform(1.0, 2.0)
        down = self.rng.uniform(1.5, 2.5)
        self.begin_fault("kill_two", f"SIGKILL {x.id}, {gap:.1f}s later SIGKILL {y.id}, "
                                     f"restart both {down:.1f}s later")
        x.signal(signal.SIGKILL)
        x.wait_exit(5)
        self.sleep(gap)
        y.signal(signal.SIGKILL)
        y.wait_exit(5)
        self.sleep(down)
        x.start()
        y.start()
        self.sleep(0.5)
        self.wait_ready(self.nodes)

    def fault_rolling_term(self):
        order = list(self.nodes)
        self.rng.shuffle(order)
        self.begin_fault("rolling_term", "SIGTERM and restart, one node at a time: "
                         + ", ".join(n.id for n in order))
        for x in order:
            x.signal(signal.SIGTERM)
            self.await_stop(x, 15, "SIGTERM")
            time.sleep(0.3)  # let the reader record the exit
            x.start()
            self.wait_ready([x])
            self.wait_converged(5)
            self.sleep(1.0)

    def fault_full_restart(self):
        self.begin_fault("full_restart", "SIGTERM all, restart all together")
        for x in self.nodes:
            x.signal(signal.SIGTERM)
        for x in self.nodes:
            self.await_stop(x, 15, "SIGTERM")
        time.sleep(0.3)
        for x in self.nodes:
            x.start()
        self.wait_ready(self.nodes)

    # the end
    def final_state(self):
        """Problems with the cluster's final state (empty: converged)."""
        problems = []
        v = self.views()
        if not self.views_agree(v):
            problems.append({"what": "views differ or are incomplete",
                             "views": {k: list(map(str, x)) for k, x in v.items()}})
        conns = {n.id: KeepAlive(n.port) for n in self.nodes}
        silent = collections.Counter()   # requests a node did not answer in this poll

        def get(nid, path):
            if silent[nid] >= 3:
                return 0, {"error": {"code": "skipped: the node stopped answering"}}
            s, b = conns[nid].get(path)
            if s == 0:
                silent[nid] += 1
            return s, b

        try:
            for u in self.load.users:
                seen = {}
                for nid in conns:
                    s, b = get(nid, f"/v1/users/{u}/presence")
                    seen[nid] = (b.get("state"), b.get("seq")) if s == 200 and b else \
                        (f"http {s}", (b or {}).get("error", {}).get("code"))
                if any(v[0].startswith("http") for v in seen.values()):
                    problems.append({"what": "user unreadable on some node", "user": u,
                                     "state_seq_by_node": seen})
                elif len(set(seen.values())) != 1:
                    problems.append({"what": "nodes disagree on a user", "user": u,
                                     "state_seq_by_node": seen})
                elif next(iter(seen.values()))[0] != "active":
                    problems.append({"what": "user not active (its tabs keep signalling)",
                                     "user": u, "state_seq_by_node": seen,
                                     "tabs": self.load.tab_states(u)})
            for rid in self.load.rooms:
                want = {u for u in self.load.users if self.load.room_of[u] == rid}
                for nid in conns:
                    s, b = get(nid, f"/v1/rooms/{rid}")
                    if s != 200 or not b:
                        problems.append({"what": "room unreadable", "room": rid, "node": nid,
                                         "status": s})
                        continue
                    have = {m.get("user_id") for m in b.get("members", [])}
                    missing = sorted(want - have)
                    if missing:
                        problems.append({"what": "users missing from their room", "room": rid,
                                         "node": nid, "missing": missing,
                                         "members": len(have)})
        finally:
            for c in conns.values():
                c.close()
        for nid, n in silent.items():
            node = next(x for x in self.nodes if x.id == nid)
            problems.append({"what": "node does not answer HTTP (wedged?)", "node": nid,
                             "timeouts": n})
        return problems

    def dump_wedged(self, problems):
        """Thread dumps of the nodes that did not answer, once the checks are over
        (gdb stops the process while it attaches: a node paused past the failure
        timeout rightly leaves the cluster, which would spoil the checks)."""
        if problems:
            # What the nodes say of themselves (entities waiting for a hand-off,
            # replication), before anything is stopped.
            for n in self.nodes:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", n.port, timeout=3)
                    conn.request("GET", "/metrics")
                    text = conn.getresponse().read().decode()
                    conn.close()
                    keep = [l for l in text.splitlines()
                            if l.startswith(("presence_handoffs", "presence_replica",
                                             "presence_users", "presence_sessions",
                                             "presence_node_ready"))]
                    self.report.note("metrics", {"node": n.id, "lines": keep})
                    print(f"chaos: metrics of {n.id}: " + "; ".join(keep), flush=True)
                except Exception as e:  # a wedged node may not answer
                    print(f"chaos: metrics of {n.id}: {e!r}", flush=True)
                st, body = http_call(n.port, "GET", "/v1/cluster", role="admin", timeout=3)
                view = (body or {}) if st == 200 else {"status": st}
                brief = {"epoch": view.get("epoch"), "leader": view.get("leader"),
                         "nodes": [(x.get("id"), x.get("status"), x.get("actors"))
                                   for x in view.get("nodes", [])]}
                self.report.note("view", {"node": n.id, "view": brief})
                print(f"chaos: view of {n.id}: {json.dumps(brief)}", flush=True)
        for p in problems:
            if p.get("what", "").startswith("node does not answer HTTP"):
                node = next(x for x in self.nodes if x.id == p["node"])
                node.dump_threads("does not answer HTTP at the final check")

    def check_convergence(self):
        if not self.wait_ready(self.nodes, 30):
            pass
        t0 = time.monotonic()
        problems = []
        while time.monotonic() - t0 < 10.0:
            self.supervise()
            problems = self.final_state()
            if not problems:
                log(f"converged {time.monotonic() - t0:.1f}s after the last fault's recovery")
                return True
            time.sleep(0.5)
        kinds = collections.Counter(p["what"] for p in problems)
        log(f"NOT converged within 10 s: {dict(kinds)}")
        for p in problems[:40]:
            self.report.violation("convergence", None, p)
        self.wedged = problems  # dumped after the intents' check
        return False

    def check_intents(self):
        L = self.load
        L.post(L.sweep_intents)
        end = time.monotonic() + 6.0
        pending = []
        while True:
            pending = [r for r in L.intents.values() if r.created and not r.accepted]
            if not pending or time.monotonic() > end:
                break
            self.sleep(0.3)
        # What every node says of each.
        conns = {n.id: KeepAlive(n.port) for n in self.nodes}
        silent = collections.Counter()
        try:
            for r in sorted(L.intents.values(), key=lambda r: r.iid):
                if not r.created:
                    continue
                statuses = {}
                for nid, c in conns.items():
                    if silent[nid] >= 3:
                        statuses[nid] = "no answer"
                        continue
                    s, b = c.get(f"/v1/intents/{r.iid}", user=r.from_user)
                    if s == 0:
                        silent[nid] += 1
                    statuses[nid] = b.get("status") if s == 200 and b else f"http {s}"
                # A finished intent is readable for its retention, then
                # forgotten (404): gone after it, it ended as it should.
                retired = (r.accepted_ms is not None
                           and time.time() * 1000 >= r.accepted_ms + INTENT_RETENTION_MS)
                ok = r.accepted and all(x == "accepted" or (retired and x == "http 404")
                                        for x in statuses.values())
                if ok:
                    self.report.intents_done[r.fault] += 1
                    continue
                # The documented loss window: a crash loses the last replication
                # interval. How long after its creation was its node killed?
                pinned = r.iid.rsplit("@", 1)[-1]
                node = next((n for n in self.nodes if n.id == pinned), None)
                after = [t - r.created_ms for t, sig in (node.signalled if node else [])
                         if sig in ("KILL", "STOP") and r.created_ms and t >= r.created_ms]
                frames = [h for h in r.history]
                self.report.violation("intent_not_final", (r.iid,), {
                    "intent_id": r.iid, "from": r.from_user, "to": r.to_user,
                    "created_t": r.created_t, "status_by_node": statuses,
                    "accepted_by_harness": r.accepted, "accept_tries": r.accept_tries,
                    "its_node_killed_or_stopped_ms_after_creation": after[:1] or None,
                    "history": frames[-12:], "server_ms": r.created_ms}, fault=r.fault)
        finally:
            for c in conns.values():
                c.close()

    def final_stop(self):
        self.report.fault = "final_sigterm"
        for n in self.nodes:
            if not n.alive():
                continue
            n.signal(signal.SIGTERM)
        for n in self.nodes:
            if n.proc is not None:
                self.await_stop(n, 20, "the final SIGTERM")
        time.sleep(0.5)  # the readers record the exits

    def await_stop(self, x, seconds, what):
        """Waits for `x` to exit after a SIGTERM; one that does not within
        `seconds` is an unclean stop: its threads are dumped, then it is killed."""
        if x.wait_exit(seconds) is not None:
            return
        x.dump_threads(f"no exit within {seconds} s of {what}")
        self.report.violation("unclean_stop", None, {
            "node": x.id, "incarnation": x.inc,
            "exit": f"none within {seconds} s of SIGTERM",
            "tail": [l[2] for l in list(x.lines)[-30:]],
            "threads": x.dumps[-1][1] if x.dumps else None})
        x.signal(signal.SIGKILL)
        x.wait_exit(5)

    # the run
    def run(self):
        a = self.args
        log(f"seed {a.seed}, {a.seconds:g}s of faults, binary {a.binary} (built "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(os.path.getmtime(a.binary)))}), "
            f"work dir {self.workdir}")
        for n in self.nodes:
            n.start()
        if not self.wait_ready(self.nodes, 30):
            log("the cluster did not start")
            return
        ok, v = self.wait_converged(15)
        if not ok:
            self.report.violation("convergence", None, {"what": "no common view at start",
                                                         "views": {k: list(map(str, x))
                                                                   for k, x in v.items()}})
            return
        log(f"cluster formed: {v[self.nodes[0].id][0]} epoch, http ports "
            f"{[n.port for n in self.nodes]}, cluster ports {[n.cport for n in self.nodes]}")
        self.load = Load(self.nodes, self.report, a.seed, a.users)
        self.load.start()
        self.sleep(3.0)
        log(f"load: {len(self.load.tabs)} tabs of {len(self.load.users)} users, "
            f"{self.report.stats['sessions_opened']} sessions open")

        t_start = time.monotonic()
        cycle = []
        est = {"kill_restart": 6, "stop_cont": 7, "kill_two": 9, "rolling_term": 12,
               "full_restart": 8}
        while True:
            if not cycle:
                cycle = list(self.kinds)
                self.rng.shuffle(cycle)
            kind = cycle[0]
            left = a.seconds - (time.monotonic() - t_start)
            if left < est[kind]:
                # A shorter fault may still fit.
                fits = [k for k in cycle if est[k] <= left]
                if not fits:
                    break
                kind = fits[0]
            cycle.remove(kind)
            getattr(self, "fault_" + kind)()
            ok, v = self.wait_converged(15)
            if not ok:
                log(f"no common view 15 s after {kind}: {v}")
            self.sleep(self.rng.uniform(2.5, 4.0))
        log(f"t={self.report.elapsed():.1f}s faults over: "
            f"{dict(self.report.faults_run)}")
        self.load.creating = False
        self.wedged = []
        self.check_convergence()
        self.check_intents()
        self.dump_wedged(self.wedged)
        self.load.stop()
        self.final_stop()

    def cleanup(self):
        for n in self.nodes:
            if n.alive():
                try:
                    if n.stopped:
                        os.kill(n.proc.pid, signal.SIGCONT)
                    os.kill(n.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                n.wait_exit(5)
        if self.load is not None and not self.load.stopping:
            self.load.stop()

    # output
    def evidence(self, d):
        """Log lines of every node around a violation's server time."""
        t = d.get("server_ms") or d.get("wall_ms")
        if not t:
            return []
        t = t / 1000.0
        terms = [d.get("user"), d.get("session_id"), d.get("intent_id")]
        ack = d.get("ack") or {}
        terms.append(ack.get("session_id"))
        terms = [x for x in terms if x]
        out = []
        for n in self.nodes:
            out += n.log_between(t - 2.5, t + 1.0, terms, limit=16)
        rx = d.get("received_ms")
        if rx and abs(rx / 1000.0 - t) > 3.0:
            out.append(f"-- and around its receipt ({(rx / 1000.0 - t):.1f}s later):")
            for n in self.nodes:
                out += n.log_between(rx / 1000.0 - 2.5, rx / 1000.0 + 0.5, terms, limit=12)
        return out

    @staticmethod
    def signature(kind, d):
        """What groups violations of a kind in the diagnosis."""
        if kind == "false_presence":
            ev, ack = d.get("event", {}), d.get("ack", {})
            stale = (d.get("received_ms", 0) - ev.get("since", 0)) > 3000
            sid = ack.get("session_id", "")
            return (f"{ev.get('state')} (prev {ev.get('prev')}) seen on {d.get('watcher')}; acked "
                    f"session pinned @{sid.rsplit('@', 1)[-1]} via {ack.get('via')}"
                    + ("; event published >3s after its since (stale)" if stale else ""))
        if kind in ("seq_repeat", "seq_backwards", "no_change_event"):
            return f"watcher on {d.get('watcher')}"
        if kind == "intent_not_final":
            st = d.get("status_by_node", {})
            return "status by node " + ", ".join(f"{k}={v}" for k, v in sorted(st.items())) + \
                ("" if d.get("accepted_by_harness") else "; never accepted by the target")
        if kind == "resume_refused":
            return f"{d.get('code')} (resuming after {d.get('why_resuming')})"
        if kind == "convergence":
            return d.get("what", "?")
        if kind in ("crash", "unclean_stop", "not_ready"):
            return f"{d.get('node')} exit {d.get('exit')} signals {d.get('signals')}"
        if kind == "intent_regressed":
            return f"{d.get('from')} -> {d.get('to')}"
        return "?"

    def diagnosis(self):
        lines = []
        for kind in VIOLATION_KINDS:
            items = self.report.examples.get(kind) or []
            if not items:
                continue
            c = collections.Counter((d.get("fault"), self.signature(kind, d)) for d in items)
            lines.append(f"  {kind} ({len(items)} recorded):")
            for (fault, sig), n in c.most_common(10):
                lines.append(f"    {n:4d} x [{fault}] {sig}")
        for kind, items in self.report.notes.items():
            lines.append(f"  note {kind}: {len(items)} recorded, e.g. "
                         + json.dumps({k: v for k, v in items[0].items() if k != "history"},
                                      default=str)[:500])
            lines.append("    history: " + json.dumps(items[0].get("history"), default=str)[:500])
        return "\n".join(lines)

    def summary(self):
        r = self.report
        lines = []
        rows = ["none"] + FAULT_KINDS + ["final_sigterm"]
        short = {"false_presence": "false_pres", "seq_repeat": "seq_rep",
                 "seq_backwards": "seq_back", "no_change_event": "no_change",
                 "intent_not_final": "int_open", "intent_regressed": "int_regr",
                 "resume_refused": "res_refd", "convergence": "converge", "crash": "crash",
                 "unclean_stop": "unclean", "not_ready": "not_ready"}
        head = f"{'fault kind':<14}{'runs':>5}" + "".join(f"{short[k]:>11}" for k in
                                                         VIOLATION_KINDS) + \
            f"{'resumes ok/refused/expired':>28}{'intents done/total':>20}"
        lines.append(head)
        lines.append("-" * len(head))
        for f in rows:
            if f != "none" and f != "final_sigterm" and not r.faults_run[f] and not r.viol[f]:
                continue
            row = f"{f:<14}{r.faults_run[f] if f in FAULT_KINDS else '-':>5}"
            row += "".join(f"{r.viol[f][k]:>11}" for k in VIOLATION_KINDS)
            row += f"{str(r.resumes_ok[f]) + '/' + str(r.resumes_refused[f]) + '/' + str(r.resumes_expired[f]):>28}"
            row += f"{str(r.intents_done[f]) + '/' + str(r.intents_total[f]):>20}"
            lines.append(row)
        lines.append("-" * len(head))
        tot = collections.Counter()
        for c in r.viol.values():
            tot.update(c)
        row = f"{'total':<14}{sum(r.faults_run.values()):>5}"
        row += "".join(f"{tot[k]:>11}" for k in VIOLATION_KINDS)
        row += f"{str(sum(r.resumes_ok.values())) + '/' + str(sum(r.resumes_refused.values())) + '/' + str(sum(r.resumes_expired.values())):>28}"
        row += f"{str(sum(r.intents_done.values())) + '/' + str(sum(r.intents_total.values())):>20}"
        lines.append(row)
        return "\n".join(lines)

    def write_out(self, text):
        out = self.args.out or tempfile.mkdtemp(prefix="presenced-chaos-out-")
        os.makedirs(out, exist_ok=True)
        for n in self.nodes:
            try:
                shutil.copy(n.log_path, os.path.join(out, f"{n.id}.log"))
                with open(n.log_path, errors="replace") as f:
                    tail = f.readlines()[-300:]
                with open(os.path.join(out, f"{n.id}.log.tail"), "w") as f:
                    f.writelines(tail)
                for _, d in n.dumps:
                    shutil.copy(d["file"], out)
            except OSError:
                pass
        ex = {}
        for k, items in self.report.examples.items():
            ex[k] = []
            for d in items:
                d = dict(d)
                d["log"] = self.evidence(d)
                ex[k].append(d)
        with open(os.path.join(out, "violations.json"), "w") as f:
            json.dump({"seed": self.args.seed, "seconds": self.args.seconds,
                       "faults": self.fault_log, "examples": ex,
                       "stats": dict(self.report.stats)}, f, indent=1, default=str)
        with open(os.path.join(out, "summary.txt"), "w") as f:
            f.write(text + "\n")
        return out

    def backtraces(self):
        """gdb backtraces of the crashes that left a core (after the run, so that gdb
        does not compete with the nodes for the CPUs)."""
        if not shutil.which("gdb"):
            return
        for n in self.nodes:
            for inc, core, detail in n.cores:
                try:
                    out = subprocess.run(
                        ["gdb", "-batch", "-nx", "-ex", "set pagination off", "-ex", "bt 40",
                         self.args.binary, core], capture_output=True, text=True, timeout=120)
                    frames = []
                    for x in out.stdout.splitlines():
                        if x.startswith("#") and not (frames and x.startswith("#0 ")
                                                      and frames[-1].startswith("#0 ")):
                            frames.append(x[:240])
                except (OSError, subprocess.TimeoutExpired) as e:
                    frames = [f"gdb failed: {e!r}"]
                detail["backtrace"] = frames[:40]
                print(f"\ncrash of {n.id} #{inc} (exit {detail.get('exit')}, signals "
                      f"{detail.get('signals')}), backtrace of the crashing thread:")
                print("  " + "\n  ".join(frames[:14]))

    def print_examples(self):
        for kind in VIOLATION_KINDS:
            items = self.report.examples.get(kind) or []
            if not items:
                continue
            print(f"\n== {kind}: {len(items)} example(s) recorded; the first ones:")
            for d in items[:3]:
                show = {k: v for k, v in d.items() if k not in ("tail", "history", "log", "backtrace")}
                print("  " + json.dumps(show, default=str)[:1200])
                if d.get("history"):
                    print("    history (kind, seq, state, prev, since, t_s): "
                          + json.dumps(d["history"], default=str)[:900])
                if d.get("tail"):
                    print("    log tail:\n      " + "\n      ".join(d["tail"][-12:]))
                ev = self.evidence(d)
                if ev:
                    print("    node logs around it:\n      " + "\n      ".join(ev[:24]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(os.path.dirname(HERE), "build",
                                                     "programs", "presenced"))
    ap.add_argument("--seconds", type=float, required=True, help="length of the fault phase")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", default=None, help="where logs and examples go on failure")
    ap.add_argument("--users", type=int, default=40)
    ap.add_argument("--keep", action="store_true", help="keep the work dir (data and logs)")
    ap.add_argument("--gate", default=",".join(VIOLATION_KINDS),
                    help="the violation kinds that fail the run (comma-separated; "
                         "default: all); the others are reported only")
    ap.add_argument("--faults", default=",".join(FAULT_KINDS),
                    help="the fault kinds to draw from (comma-separated; default: all of "
                         + ", ".join(FAULT_KINDS) + ")")
    args = ap.parse_args()
    unknown = set(args.faults.split(",")) - set(FAULT_KINDS)
    if unknown or not args.faults:
        print(f"chaos: unknown fault kinds {sorted(unknown)}", file=sys.stderr)
        return 2
    args.binary = os.path.abspath(args.binary)  # the nodes run in their own dirs
    if not os.access(args.binary, os.X_OK):
        print(f"chaos: no executable presenced at {args.binary}", file=sys.stderr)
        return 2
    c = Chaos(args)
    started = time.monotonic()
    harness_failed = False
    try:
        c.run()
    except KeyboardInterrupt:
        log("interrupted")
    except Exception:
        import traceback
        traceback.print_exc()
        harness_failed = True
    finally:
        c.cleanup()
    r = c.report
    table = c.summary()
    print("\nfaults:")
    for t, kind, desc in c.fault_log:
        print(f"  t={t:6.1f}s {kind:<13} {desc}")
    print(f"\nseed {args.seed}, {time.monotonic() - started:.0f}s in all\n" + table)
    s = r.stats
    print(f"\nclients: {s['sessions_opened']} sessions opened, {s['resumes_ok']} resumed, "
          f"{s['http_signals_acked']} HTTP signals acked, {s['ws_signals']} WS signals, "
          f"{s['watcher_events']} watcher events ({s['watcher_reconnects']} watcher reconnects), "
          f"{s['intents_created']} intents created")
    print("stats: " + ", ".join(f"{k}={v}" for k, v in sorted(s.items())))
    gate = [k for k in args.gate.split(",") if k]
    gated = sum(n for f in r.viol.values() for k, n in f.items() if k in gate)
    failed = gated > 0
    if gated != r.total():
        print(f"chaos: {r.total() - gated} violations of kinds outside --gate "
              f"({','.join(gate)}) are reported, not failed on")
    c.backtraces()
    for n in c.nodes:
        for inc, d in n.dumps:
            print(f"\n{n.id} #{inc} hung ({d['why']}); its threads (first frames in CAF or "
                  f"the project's code), all in {d['file']}:")
            for t in d["threads"][:24]:
                print("  " + t[:400])
    if r.total() > 0 or r.notes:
        print("\ndiagnosis (grouped by fault and pattern):\n" + c.diagnosis())
    if r.total() > 0:
        c.print_examples()
        out = c.write_out(table)
        print(f"\nchaos: {'FAILED' if failed else 'passed the gate'} ({gated} gated and "
              f"{r.total() - gated} other violations); logs and examples in {out}")
    else:
        print("\nchaos: passed")
    if args.keep:
        print(f"chaos: work dir kept: {c.workdir}")
    else:
        shutil.rmtree(c.workdir, ignore_errors=True)
    if harness_failed:
        print("chaos: the harness itself failed (traceback above)")
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
