#!/usr/bin/env python3
"""Soak benchmark: one presenced under a careless client mix for N minutes.

    scripts/soak.py --binary build/programs/presenced --minutes N [--sessions 500]
                    [--node-flag=--<section>.<key>=<value>]... [--keep-data]

Starts its own presenced on 127.0.0.1 (HTTP port 0, read back from its log; a
temporary data directory), and runs, all at once:

  * sessions (--sessions) that say hello over WebSocket, heartbeat at the
    interval the server asks for (mostly `active`, sometimes `idle` or
    `background`), join a room now and then, and after a random lifetime drop
    the TCP connection without a word (most), or send `leave`; dropped ones come
    back later and resume with their token (or start over if it expired);
  * a dashboard socket subscribed to every session's user and the rooms, reading
    every event and checking that each user's seq only increases;
  * a socket on a tiny receive buffer subscribed to everything that stops
    reading (replaced by a new one each minute);
  * bursts of reads of random ids (users, rooms, queries of 1000), of junk paths
    and of junk methods over HTTP;
  * a socket that stays quiet for the whole run (it reads, so it answers pings).

Every 10 s it prints one line: elapsed, the node's RSS (/proc/<pid>/status),
open sockets and HTTP connections, user/room/session gauges from /metrics, the
/metrics line count and bytes, plus what the clients saw. At the end: a summary
(baseline vs final RSS, maxima) and the node is stopped with SIGTERM (only the
pid this script started). Exit status 0 if the node lived through the run and
exited 0 with its storage flushed.

Python 3 standard library only: the WebSocket client is written here.
"""

import argparse
import base64
import collections
import hashlib
import heapq
import http.client
import json
import os
import random
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# --- a minimal WebSocket client on a selector loop -----------------------------------

def mask_payload(data: bytes, key: bytes) -> bytes:
    n = len(data)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def encode_frame(opcode: int, payload: bytes) -> bytes:
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    key = os.urandom(4)
    return head + key + mask_payload(payload, key)


class Loop:
    """One thread's selector and timers."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.timers = []  # (when, seq, fn)
        self.seq = 0
        self.stopping = False

    def call_at(self, when, fn):
        self.seq += 1
        heapq.heappush(self.timers, (when, self.seq, fn))

    def call_later(self, delay, fn):
        self.call_at(time.monotonic() + delay, fn)

    def run(self, until):
        while not self.stopping and time.monotonic() < until:
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _, _, fn = heapq.heappop(self.timers)
                try:
                    fn()
                except Exception as e:  # a client's bug must not end the soak
                    print(f"soak: timer error: {e!r}", file=sys.stderr)
            timeout = 0.05
            if self.timers:
                timeout = max(0.0, min(timeout, self.timers[0][0] - time.monotonic()))
            try:
                events = self.sel.select(timeout)
            except OSError:
                events = []
            for key, mask in events:
                conn = key.data
                try:
                    if mask & selectors.EVENT_WRITE:
                        conn.on_writable()
                    if mask & selectors.EVENT_READ:
                        conn.on_readable()
                except Exception as e:
                    print(f"soak: socket error: {e!r}", file=sys.stderr)
                    conn.abort()


class WS:
    """A WebSocket to /v1/ws as `user` (dev mode, X-User). Callbacks:
    on_open(ws), on_text(ws, obj), on_end(ws) once when it is gone."""

    def __init__(self, loop, port, user, rcvbuf=0, on_open=None, on_text=None, on_end=None,
                 stats=None):
        self.loop, self.user = loop, user
        self.on_open_cb, self.on_text_cb, self.on_end_cb = on_open, on_text, on_end
        self.stats = stats if stats is not None else collections.Counter()
        self.out = bytearray()
        self.inb = bytearray()
        self.frag = bytearray()
        self.open = False
        self.ended = False
        self.reading = True      # False: stalled (never reads again)
        self.close_code = None
        self.pings = 0
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.sock.connect_ex(("127.0.0.1", port))
        self.out += (f"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     f"Connection: Upgrade\r\nSec-WebSocket-Key: {self.key}\r\n"
                     f"Sec-WebSocket-Version: 13\r\nX-User: {user}\r\n\r\n").encode()
        self.registered = 0
        self._update()

    # selector bookkeeping
    def _update(self):
        if self.ended:
            return
        mask = (selectors.EVENT_READ if self.reading else 0) | \
               (selectors.EVENT_WRITE if self.out else 0)
        if mask == self.registered:
            return
        try:
            if self.registered == 0:
                self.loop.sel.register(self.sock, mask, self)
            elif mask == 0:
                self.loop.sel.unregister(self.sock)
            else:
                self.loop.sel.modify(self.sock, mask, self)
            self.registered = mask
        except (KeyError, ValueError, OSError):
            self.abort()

    def stall(self):
        """Stops reading for good (the TCP window closes, no pong is sent)."""
        self.reading = False
        self._update()

    def send_json(self, obj):
        self.send_frame(0x1, json.dumps(obj, separators=(",", ":")).encode())

    def send_frame(self, opcode, payload):
        if self.ended:
            return
        if len(self.out) > (4 << 20):
            self.stats["client_send_overflow"] += 1
            return self.abort()
        self.out += encode_frame(opcode, payload)
        self._update()

    def drop(self):
        """Closes the TCP connection without a close frame (a vanished client)."""
        self.abort()

    def abort(self):
        if self.ended:
            return
        self.ended = True
        try:
            if self.registered:
                self.loop.sel.unregister(self.sock)
        except (KeyError, ValueError, OSError):
            pass
        self.registered = 0
        try:
            self.sock.close()
        except OSError:
            pass
        if self.on_end_cb:
            self.on_end_cb(self)

    def on_writable(self):
        if self.ended:
            return
        try:
            n = self.sock.send(self.out)
            del self.out[:n]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            return self.abort()
        self._update()

    def on_readable(self):
        if self.ended:
            return
        try:
            data = self.sock.recv(1 << 18)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.stats["ws_reset"] += 1
            return self.abort()
        if not data:
            self.stats["ws_eof"] += 1
            return self.abort()
        self.stats["ws_bytes_in"] += len(data)
        self.inb += data
        self._parse()

    def _parse(self):
        if not self.open:
            end = self.inb.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.inb[:end]).decode("latin-1")
            del self.inb[:end + 4]
            status = head.split("\r\n", 1)[0]
            if " 101 " not in status + " ":
                self.stats["ws_refused"] += 1
                return self.abort()
            want = base64.b64encode(hashlib.sha1((self.key + WS_GUID).encode()).digest()).decode()
            if want.lower() not in head.lower():
                self.stats["ws_bad_accept"] += 1
                return self.abort()
            self.open = True
            if self.on_open_cb:
                self.on_open_cb(self)
        pos = 0
        buf = self.inb
        while not self.ended:
            avail = len(buf) - pos
            if avail < 2:
                break
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            hl = 2
            if n == 126:
                if avail < 4:
                    break
                n = struct.unpack_from("!H", buf, pos + 2)[0]
                hl = 4
            elif n == 127:
                if avail < 10:
                    break
                n = struct.unpack_from("!Q", buf, pos + 2)[0]
                hl = 10
            masked = b1 & 0x80
            if masked:
                hl += 4
            if avail < hl + n:
                break
            payload = bytes(buf[pos + hl:pos + hl + n])
            if masked:
                payload = mask_payload(payload, bytes(buf[pos + hl - 4:pos + hl]))
            pos += hl + n
            self._frame(b0 & 0x0F, bool(b0 & 0x80), payload)
        if not self.ended:
            del self.inb[:pos]

    def _frame(self, opcode, fin, payload):
        if opcode in (0x0, 0x1, 0x2):
            self.frag += payload
            if fin:
                text = bytes(self.frag)
                self.frag = bytearray()
                self.stats["ws_frames_in"] += 1
                try:
                    obj = json.loads(text)
                except ValueError:
                    self.stats["ws_bad_json"] += 1
                    return
                if self.on_text_cb:
                    self.on_text_cb(self, obj)
        elif opcode == 0x8:
            self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            self.stats[f"ws_close_{self.close_code}"] += 1
            # Answer the close, then let the server end the connection.
            self.send_frame(0x8, payload[:2])
            self.loop.call_later(2.0, self.abort)
        elif opcode == 0x9:
            self.pings += 1
            self.stats["ws_pings"] += 1
            self.send_frame(0xA, payload)


# --- HTTP ---------------------------------------------------------------------------

class Http:
    """A keep-alive HTTP connection that reconnects when the server closed it."""

    def __init__(self, port, user="soak-reader"):
        self.port, self.user = port, user
        self.conn = None

    def request(self, method, path, body=None, user=None):
        headers = {}
        u = self.user if user is None else user
        if u:
            headers["X-User"] = u
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, raw
            except (OSError, http.client.HTTPException):
                if self.conn:
                    self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        return 0, b""


def parse_metrics(text):
    """{series line without value: value}, for samples."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        sp = line.rfind(" ")
        if sp < 0:
            continue
        try:
            out[line[:sp]] = float(line[sp + 1:])
        except ValueError:
            pass
    return out


def metric_sum(m, prefix):
    vals = [v for k, v in m.items() if k.startswith(prefix)]
    return sum(vals) if vals else -1


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return -1.0


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


# --- the node -----------------------------------------------------------------------

class Node:
    def __init__(self, binary, flags, keep_data):
        self.data_dir = tempfile.mkdtemp(prefix="presenced-soak-")
        self.keep_data = keep_data
        self.log_path = os.path.join(self.data_dir, "presenced.log")
        self.log = open(self.log_path, "w")
        self.lines = []
        self.port = 0
        self.ready = threading.Event()
        args = [binary, "--node.bind=127.0.0.1", "--node.http_port=0",
                "--node.cluster_port=0", f"--node.data_dir={self.data_dir}/db",
                "--node.id=soak"] + flags
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace")
            self.log.write(line)
            self.log.flush()
            if len(self.lines) < 100000:
                self.lines.append(line)
            if not self.port and "http listening on " in line:
                try:
                    self.port = int(line.rsplit(":", 1)[1].split()[0])
                except (ValueError, IndexError):
                    pass
            if "] ready" in line:
                self.ready.set()

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready.wait(0.1) and self.port:
                return True
            if self.proc.poll() is not None:
                return False
        return False

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=15):
        """SIGTERM to the pid this script started; SIGKILL to it if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        self.reader.join(5)
        return self.proc.returncode

    def log_text(self):
        return "".join(self.lines)

    def cleanup(self):
        self.log.close()
        if self.keep_data:
            print(f"soak: data and log kept in {self.data_dir}")
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)


# --- the careless mix ---------------------------------------------------------------

class Mix:
    def __init__(self, port, sessions, rooms=20):
        self.port = port
        self.loop = Loop()
        self.stats = collections.Counter()
        self.n = sessions
        self.users = [f"soak-u{i}" for i in range(sessions)]
        self.rooms = [f"soak-room{i}" for i in range(rooms)]
        self.sessions = {}  # user -> {"sid", "token", "ws", "hb"}
        self.dash = None
        self.dash_seq = {}
        self.stalled = None
        self.quiet = None
        self.quiet_opened = 0
        self.stop_at = 0

    # sessions that heartbeat, drop and resume
    def start_session(self, user):
        st = self.sessions.setdefault(user, {"sid": None, "token": None, "ws": None,
                                             "hb": 10.0, "gen": 0})
        st["gen"] += 1
        gen = st["gen"]

        def on_open(ws):
            hello = {"op": "hello", "device": "soak"}
            if st["sid"]:
                hello.update(session_id=st["sid"], resume_token=st["token"],
                             signal="active")
            ws.send_json(hello)

        def on_text(ws, f):
            op = f.get("op")
            if op == "welcome":
                self.stats["welcome_resumed" if f.get("resumed") else "welcome_new"] += 1
                st["sid"], st["token"] = f.get("session_id"), f.get("resume_token")
                st["hb"] = max(0.5, f.get("heartbeat_ms", 10000) / 1000.0)
                self.loop.call_later(random.uniform(0.2, st["hb"]), lambda: heartbeat(ws))
                if random.random() < 0.3:
                    ws.send_json({"op": "join", "room": random.choice(self.rooms)})
                life = random.uniform(5, 60)
                self.loop.call_later(life, lambda: finish(ws))
            elif op == "ack":
                st["hb"] = max(0.5, f.get("heartbeat_ms", 10000) / 1000.0)
                self.stats["acks"] += 1
            elif op == "error":
                code = f.get("code")
                self.stats[f"error_{code}"] += 1
                if code in ("session_not_found", "forbidden"):
                    # Expired while away (or token no longer valid): start over.
                    st["sid"] = st["token"] = None
                    ws.send_json({"op": "hello", "device": "soak"})

        def heartbeat(ws):
            if ws.ended or st["gen"] != gen:
                return
            sig = random.choices(["active", "idle", "background"], [0.7, 0.2, 0.1])[0]
            ws.send_json({"op": "signal", "signal": sig})
            self.stats["signals"] += 1
            self.loop.call_later(st["hb"] * random.uniform(0.5, 0.9), lambda: heartbeat(ws))

        def finish(ws):
            if ws.ended or st["gen"] != gen:
                return
            st["gen"] += 1  # this connection's end is planned: on_end stays quiet
            if random.random() < 0.75:
                self.stats["drops"] += 1
                ws.drop()
                comeback = random.uniform(0.5, 30)
            else:
                self.stats["leaves"] += 1
                ws.send_json({"op": "leave"})  # the server closes the socket
                st["sid"] = st["token"] = None
                comeback = random.uniform(1, 10)
            self.loop.call_later(comeback, lambda: self.start_session(user))

        def on_end(ws):
            # Ended by the server or the network, not by plan: come back later.
            if st["gen"] == gen and not self.loop.stopping:
                st["gen"] += 1
                self.stats[f"session_ended_{ws.close_code}"] += 1
                self.loop.call_later(random.uniform(1, 10), lambda: self.start_session(user))

        try:
            st["ws"] = WS(self.loop, self.port, user, on_open=on_open, on_text=on_text,
                          on_end=on_end, stats=self.stats)
        except OSError:
            self.stats["connect_failed"] += 1
            self.loop.call_later(1, lambda: self.start_session(user))

    # a dashboard subscribed to every user and room
    def start_dashboard(self):
        def on_open(ws):
            ws.send_json({"op": "hello", "device": "dashboard"})

        def on_text(ws, f):
            op = f.get("op")
            if op == "welcome":
                for i in range(0, len(self.users), 1000):
                    ws.send_json({"op": "subscribe", "users": self.users[i:i + 1000],
                                  "rooms": self.rooms if i == 0 else []})
            elif op == "subscribed":
                for u in f.get("users", []):
                    self.dash_seq[u["user_id"]] = max(self.dash_seq.get(u["user_id"], -1),
                                                      u.get("seq", -1))
                self.stats["dash_subscribed"] += 1
            elif op == "presence":
                self.stats["dash_presence"] += 1
                uid, seq = f.get("user_id"), f.get("seq", -1)
                last = self.dash_seq.get(uid, -1)
                if seq <= last:
                    self.stats["dash_seq_backwards"] += 1
                elif last >= 0 and seq > last + 1:
                    self.stats["dash_seq_gaps"] += 1
                self.dash_seq[uid] = max(last, seq)
            elif op in ("room", "room_delta"):
                self.stats["dash_room_events"] += 1

        def on_end(ws):
            self.stats[f"dash_closed_{ws.close_code}"] += 1
            if not self.loop.stopping:
                self.dash_seq = {}
                self.loop.call_later(1, self.start_dashboard)

        self.dash = WS(self.loop, self.port, "soak-dashboard", on_open=on_open,
                       on_text=on_text, on_end=on_end, stats=self.stats)

    # a socket that stops reading; replaced every minute
    def start_stalled(self):
        if self.stalled and not self.stalled.ended:
            self.stalled.drop()
        state = {"subscribed": False}

        def on_open(ws):
            ws.send_json({"op": "hello", "device": "stalled"})

        def on_text(ws, f):
            if f.get("op") == "welcome" and not state["subscribed"]:
                state["subscribed"] = True
                for i in range(0, len(self.users), 1000):
                    ws.send_json({"op": "subscribe", "users": self.users[i:i + 1000],
                                  "rooms": self.rooms if i == 0 else []})
                ws.stall()  # and never reads again
                self.stats["stalled_opened"] += 1

        self.stalled = WS(self.loop, self.port, "soak-stalled", rcvbuf=4096, on_open=on_open,
                          on_text=on_text, stats=self.stats)
        self.loop.call_later(60, self.start_stalled)

    # one socket quiet for the whole run (reads, so it answers pings)
    def start_quiet(self):
        def on_open(ws):
            ws.send_json({"op": "hello", "device": "quiet"})

        def on_end(ws):
            self.stats[f"quiet_closed_{ws.close_code}"] += 1
            if not self.loop.stopping:
                self.loop.call_later(1, self.start_quiet)

        self.quiet_opened += 1
        self.quiet = WS(self.loop, self.port, "soak-quiet", on_open=on_open, on_end=on_end,
                        stats=self.stats)

    def run(self, seconds):
        self.stop_at = time.monotonic() + seconds
        # Sessions ramp up over the first 5 s.
        for i, u in enumerate(self.users):
            self.loop.call_later(5.0 * i / max(1, self.n), lambda u=u: self.start_session(u))
        self.loop.call_later(2, self.start_dashboard)
        self.loop.call_later(3, self.start_stalled)
        self.loop.call_later(1, self.start_quiet)
        self.loop.run(self.stop_at)

    def stop(self):
        self.loop.stopping = True


def rand_id(rng, prefix):
    return prefix + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                            for _ in range(12))


def http_bursts(port, until, stats, stop_event):
    """Every ~5 s: reads of random ids, queries, junk paths and methods."""
    rng = random.Random()
    h = Http(port)
    n = 0
    while not stop_event.is_set() and time.monotonic() < until:
        try:
            for _ in range(300):
                s, _ = h.request("GET", f"/v1/users/{rand_id(rng, 'x-')}/presence")
                stats[f"http_unknown_user_{s}"] += 1
            for _ in range(2):
                s, _ = h.request("POST", "/v1/presence/query",
                                 {"users": [rand_id(rng, "q-") for _ in range(1000)]})
                stats[f"http_query_{s}"] += 1
            for _ in range(100):
                s, _ = h.request("GET", f"/v1/rooms/{rand_id(rng, 'r-')}")
                stats[f"http_unknown_room_{s}"] += 1
            for _ in range(100):
                n += 1
                path = rng.choice([f"/v1/junk-{n}/x{n}", f"/v1/users/u{n}/junk{n}",
                                   f"/junk-{n}", f"/v1/junk-{n}"])
                s, raw = h.request("GET", path)
                ok = s in (404, 405) and raw.startswith(b'{"error"')
                stats["http_junk_ok" if ok else f"http_junk_bad_{s}"] += 1
            for _ in range(50):
                n += 1
                method = rng.choice(["PATCH", "FOO", "BAR%d" % n, "PROPFIND"])
                path = rng.choice(["/v1/sessions", f"/v1/junk-{n}", f"/v1/rooms/r{n}"])
                s, raw = h.request(method, path, body={} if method == "PATCH" else None)
                ok = s in (404, 405) and raw.startswith(b'{"error"')
                stats["http_method_ok" if ok else f"http_method_bad_{s}"] += 1
        except (OSError, http.client.HTTPException) as e:
            stats["http_errors"] += 1
            print(f"soak: http burst: {e!r}", file=sys.stderr)
        stop_event.wait(5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", required=True, help="path to presenced")
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--sessions", type=int, default=500)
    ap.add_argument("--node-flag", action="append", default=[],
                    help="extra presenced flag, e.g. --node-flag=--limits.slow_reader_ms=5000")
    ap.add_argument("--keep-data", action="store_true", help="keep the data dir and log")
    args = ap.parse_args()

    # Thresholds compressed so that sessions decay and expire within minutes.
    flags = ["--presence.active_window_ms=5000", "--presence.idle_after_ms=15000",
             "--presence.stale_after_ms=30000", "--presence.offline_after_ms=45000",
             "--presence.heartbeat_active_ms=4000", "--presence.heartbeat_idle_ms=10000",
             "--presence.heartbeat_background_ms=20000",
             "--limits.ws_ping_interval_ms=5000", "--limits.slow_reader_ms=5000",
             "--node.passivate_after_ms=10000"] + args.node_flag
    node = Node(args.binary, flags, args.keep_data)
    exit_status = 0
    try:
        if not node.wait_ready():
            print("soak: presenced did not start:\n" + node.log_text()[-4000:])
            node.stop()
            return 1
        port = node.port
        print(f"soak: presenced pid {node.pid} on 127.0.0.1:{port}, data {node.data_dir}, "
              f"{args.sessions} sessions, {args.minutes:g} min")
        seconds = args.minutes * 60
        mix = Mix(port, args.sessions)
        stop_event = threading.Event()
        started = time.monotonic()
        until = started + seconds
        wsthread = threading.Thread(target=mix.run, args=(seconds,), daemon=True)
        burst = threading.Thread(target=http_bursts, args=(port, until, mix.stats, stop_event),
                                 daemon=True)
        wsthread.start()
        burst.start()

        mon = Http(port, user="")
        samples = []
        header = (f"{'t_s':>5} {'rss_mib':>8} {'fds':>5} {'ws_open':>7} {'http':>4} "
                  f"{'users':>6} {'rooms':>5} {'sess':>6} {'timers':>6} {'m_lines':>7} "
                  f"{'m_bytes':>8} {'slow':>4} | clients")
        print(header)
        next_t = started
        died = False
        while time.monotonic() < until:
            next_t += 10
            while time.monotonic() < min(next_t, until):
                time.sleep(0.2)
                if not node.alive():
                    died = True
                    break
            if died:
                break
            try:
                s, raw = mon.request("GET", "/metrics", user="")
                text = raw.decode()
            except (OSError, http.client.HTTPException) as e:
                print(f"soak: /metrics failed: {e!r}")
                continue
            m = parse_metrics(text)
            live = sum(m.get(f'presence_sessions{{state="{st}"}}', 0)
                       for st in ("active", "idle", "away", "stale"))
            row = {
                "t": time.monotonic() - started,
                "rss": rss_mib(node.pid),
                "fds": fd_count(node.pid),
                "ws": m.get("presence_sockets_open", -1),
                "http": m.get("presence_http_connections", -1),
                "users": metric_sum(m, "presence_users{"),
                "rooms": m.get("presence_rooms", -1),
                "sessions": live,
                "timers": m.get("presence_timers_armed", -1),
                "lines": text.count("\n"),
                "bytes": len(raw),
                "slow": m.get("presence_ws_closed_slow_total", -1),
            }
            samples.append(row)
            st = mix.stats
            clients = (f"welcome {st['welcome_new']}+{st['welcome_resumed']}r "
                       f"drops {st['drops']} leaves {st['leaves']} "
                       f"dash ev {st['dash_presence']} gaps {st['dash_seq_gaps']} "
                       f"back {st['dash_seq_backwards']} "
                       f"quiet pings {mix.quiet.pings if mix.quiet else 0}")
            print(f"{row['t']:5.0f} {row['rss']:8.1f} {row['fds']:5d} {row['ws']:7.0f} "
                  f"{row['http']:4.0f} {row['users']:6.0f} {row['rooms']:5.0f} "
                  f"{row['sessions']:6.0f} {row['timers']:6.0f} {row['lines']:7d} "
                  f"{row['bytes']:8d} {row['slow']:4.0f} | {clients}", flush=True)

        mix.stop()
        stop_event.set()
        wsthread.join(5)
        burst.join(15)

        print("\nsummary")
        if died or not node.alive():
            print(f"  the node DIED during the run (exit {node.proc.poll()}); log tail:")
            print("  " + node.log_text()[-3000:].replace("\n", "\n  "))
            exit_status = 1
        if samples:
            base = samples[0]
            last = samples[-1]
            mx = lambda k: max(r[k] for r in samples)
            print(f"  RSS MiB: baseline {base['rss']:.1f} (t={base['t']:.0f}s), final "
                  f"{last['rss']:.1f}, max {mx('rss'):.1f}, growth "
                  f"{last['rss'] - base['rss']:+.1f}")
            print(f"  /metrics lines: baseline {base['lines']}, final {last['lines']}, max "
                  f"{mx('lines')}; bytes: baseline {base['bytes']}, final {last['bytes']}, "
                  f"max {mx('bytes')}")
            print(f"  open sockets: final {last['ws']:.0f}, max {mx('ws'):.0f}; fds: final "
                  f"{last['fds']}, max {mx('fds')}")
            print(f"  user actors: final {last['users']:.0f}, max {mx('users'):.0f}; room "
                  f"actors: final {last['rooms']:.0f}, max {mx('rooms'):.0f}; live sessions: "
                  f"final {last['sessions']:.0f}, max {mx('sessions'):.0f}")
            print(f"  slow readers closed: {last['slow']:.0f}")
        st = mix.stats
        print("  clients: " + ", ".join(f"{k}={v}" for k, v in sorted(st.items())))
        if mix.quiet:
            print(f"  quiet socket: opened {mix.quiet_opened} time(s), {mix.quiet.pings} pings "
                  f"on the current one")
        if node.alive():
            t0 = time.monotonic()
            rc = node.stop()
            took = time.monotonic() - t0
            flushed = "storage flushed" in node.log_text()
            print(f"  SIGTERM: exit {rc} after {took:.1f} s, storage flushed: "
                  f"{'yes' if flushed else 'NO'}")
            if rc != 0 or not flushed:
                exit_status = 1
                print("  log tail:\n  " + node.log_text()[-3000:].replace("\n", "\n  "))
        return exit_status
    except KeyboardInterrupt:
        print("soak: interrupted")
        return 130
    finally:
        if node.alive():
            node.stop()
        node.cleanup()


if __name__ == "__main__":
    sys.exit(main())
