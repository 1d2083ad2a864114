#!/usr/bin/env python3
"""Reads of unknown ids: RSS before and after N reads (default 1,000,000).

    bench/unknown_reads.py --binary build/programs/presenced [--reads N] [--threads T]

Starts its own presenced on 127.0.0.1 (dev mode, storage off), reads
GET /v1/users/<random>/presence over keep-alive connections from T threads
(every 20th request a POST /v1/presence/query of 100 random ids, every 10th a
GET /v1/rooms/<random>), and prints the node's RSS (/proc/<pid>/status) and
entity gauges at the start, every 10% and at the end. Asserts nothing; stops
the node it started with SIGTERM.
"""
import argparse, http.client, json, os, random, re, signal, string, subprocess, sys, tempfile, threading, time

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1

def gauge(text, name):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--reads", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=4)
    a = ap.parse_args()
    data = tempfile.mkdtemp(prefix="presenced-reads-")
    p = subprocess.Popen([a.binary, "--node.http_port=0", "--node.cluster_port=0",
                          "--node.data_dir=" + data, "--storage.enabled=false"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    port = None
    deadline = time.time() + 20
    log = ""
    while time.time() < deadline:
        line = p.stdout.readline()
        log += line
        m = re.search(r"http listening on [^:]+:(\d+)", line)
        if m:
            port = int(m.group(1))
        if port and "] ready" in line:
            break
    if not port:
        print("presenced did not start:\n" + log)
        p.kill()
        return 1
    threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()

    def metrics():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/metrics")
        t = c.getresponse().read().decode()
        c.close()
        return t

    def report(label, done):
        t = metrics()
        print(f"{label:>8} reads {done:>8}  rss {rss_kib(p.pid)/1024:7.1f} MiB  "
              f"users {gauge(t, 'presence_users'):.0f}  rooms {gauge(t, 'presence_rooms'):.0f}  "
              f"entities {gauge(t, 'presence_entities'):.0f}  metrics lines {len(t.splitlines())}",
              flush=True)

    report("start", 0)
    base = rss_kib(p.pid)
    count = [0]
    lock = threading.Lock()
    per = a.reads // a.threads
    started = time.time()

    def rid():
        return "".join(random.choices(string.ascii_lowercase + string.digits, k=12))

    def worker():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        h = {"X-User": "reader"}
        for i in range(per):
            if i % 20 == 0:
                body = json.dumps({"users": ["q-" + rid() for _ in range(100)]})
                c.request("POST", "/v1/presence/query", body, h)
            elif i % 10 == 0:
                c.request("GET", "/v1/rooms/r-" + rid(), headers=h)
            else:
                c.request("GET", "/v1/users/u-" + rid() + "/presence", headers=h)
            r = c.getresponse()
            r.read()
            if r.status != 200:
                print("unexpected status", r.status)
            with lock:
                count[0] += 1
        c.close()

    ts = [threading.Thread(target=worker) for _ in range(a.threads)]
    for t in ts:
        t.start()
    step = max(1, a.reads // 10)
    nxt = step
    while any(t.is_alive() for t in ts):
        time.sleep(0.5)
        if count[0] >= nxt:
            report("", count[0])
            nxt += step
    for t in ts:
        t.join()
    elapsed = time.time() - started
    report("end", count[0])
    final = rss_kib(p.pid)
    print(f"{count[0]} reads in {elapsed:.1f} s ({count[0]/elapsed:.0f}/s); RSS {base/1024:.1f} -> "
          f"{final/1024:.1f} MiB ({(final-base)*100.0/base:+.1f}%)")
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(15)
    except subprocess.TimeoutExpired:
        p.kill()
    subprocess.run(["rm", "-rf", data])
    return 0

if __name__ == "__main__":
    sys.exit(main())
