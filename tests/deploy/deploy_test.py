#!/usr/bin/env python3
"""Checks the operator files under deploy/ (run by ctest, tests/deploy/CMakeLists.txt).

    deploy_test.py CHECK --root REPO --presenced BIN --presencectl BIN

CHECK is one of: manifests, promtool, systemd, metrics, check_config, json_logs,
entrypoint, statefulset, replication_lag. Exit 0: passed; 1: failed (the reason is printed); 77: skipped
because a tool is not installed (promtool, systemd-analyze).
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

SKIP = 77
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def load_yaml_docs(path):
    try:
        import yaml
    except ImportError:
        print("FAIL: PyYAML is missing: install python3-yaml (scripts/setup.sh does)")
        sys.exit(1)
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def k8s(root):
    docs = {}
    d = os.path.join(root, "deploy", "kubernetes")
    for name in sorted(os.listdir(d)):
        if name.endswith(".yaml"):
            for doc in load_yaml_docs(os.path.join(d, name)):
                docs.setdefault(doc.get("kind"), []).append((name, doc))
    return d, docs


def one(docs, kind, name=None):
    items = [doc for _, doc in docs.get(kind, []) if name is None or doc["metadata"]["name"] == name]
    check(len(items) == 1, f"exactly one {kind} {name or ''} in deploy/kubernetes")
    return items[0] if items else {}


def test_manifests(a):
    d, docs = k8s(a.root)
    sts = one(docs, "StatefulSet", "presenced")
    spec = sts.get("spec", {})
    peers = one(docs, "Service", "presenced-peers")
    client = one(docs, "Service", "presenced")
    pdb = one(docs, "PodDisruptionBudget")
    one(docs, "Secret")  # secret.example.yaml
    check(peers["spec"].get("clusterIP") == "None", "presenced-peers is headless (clusterIP: None)")
    check(peers["spec"].get("publishNotReadyAddresses") is True,
          "presenced-peers has publishNotReadyAddresses: true")
    check(spec.get("serviceName") == "presenced-peers", "StatefulSet.serviceName is the headless service")
    check(client["spec"].get("clusterIP") != "None", "the client service is not headless")
    labels = spec["template"]["metadata"]["labels"]
    for svc in (peers, client):
        check(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()),
              f"service {svc['metadata']['name']} selects the StatefulSet's pods")
    check(all(labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items()),
          "the PDB selects the StatefulSet's pods")
    check(pdb["spec"].get("maxUnavailable") == 1, "the PDB allows one pod down at a time")
    c = spec["template"]["spec"]["containers"][0]
    check(c["readinessProbe"]["httpGet"]["path"] == "/readyz", "readiness probe is /readyz")
    check(c["livenessProbe"]["httpGet"]["path"] == "/healthz", "liveness probe is /healthz")
    sp = c["startupProbe"]
    check(sp["periodSeconds"] * sp["failureThreshold"] >= 600,
          "the startup probe allows at least 10 minutes for recovery")
    pre = " ".join(c["lifecycle"]["preStop"]["exec"]["command"])
    check("presencectl" in pre and " drain " in pre and "--wait" in pre and "$POD_NAME" in pre,
          "preStop drains the pod's node (presencectl ... drain $POD_NAME --wait)")
    grace = spec["template"]["spec"]["terminationGracePeriodSeconds"]
    m = re.search(r"--wait-s (\d+)", pre)
    check(m is not None and grace > int(m.group(1)), "terminationGracePeriodSeconds exceeds the drain wait")
    env = {e["name"]: e for e in c["env"]}
    for var, key in (("PRESENCED_AUTH_SECRET", "auth-secret"), ("PRESENCED_CLUSTER_SECRET", "cluster-secret")):
        ref = env.get(var, {}).get("valueFrom", {}).get("secretKeyRef", {})
        check(ref.get("name") == "presenced-secrets" and ref.get("key") == key,
              f"{var} comes from Secret presenced-secrets key {key}")
    check(env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name", "POD_NAME from the pod name")
    check(env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP", "POD_IP from the pod IP")
    check(env.get("REPLICAS", {}).get("value") == str(spec["replicas"]), "REPLICAS equals spec.replicas")
    vct = spec["volumeClaimTemplates"][0]["metadata"]["name"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    check(mounts.get(vct) == "/var/lib/presenced", "the volumeClaimTemplate is mounted at the data dir")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    check(ports == {"http": 8080, "cluster": 7400}, "container ports http 8080, cluster 7400")
    check(c["command"][-1] == "/etc/presenced/entrypoint.sh", "the container runs the entrypoint")
    with open(os.path.join(d, "kustomization.yaml")) as f:
        kust = f.read()
    for f_ in ("statefulset.yaml", "service-peers.yaml", "service.yaml", "pdb.yaml", "entrypoint.sh", "presenced.toml"):
        check(f_ in kust, f"kustomization.yaml includes {f_}")
    check("secret.example.yaml" not in kust, "kustomization.yaml does not apply the example secret")
    # The README walks through these names.
    with open(os.path.join(a.root, "deploy", "README.md")) as f:
        readme = f.read()
    for word in ("StatefulSet", "publishNotReadyAddresses", "/readyz", "/healthz", "preStop",
                 "PodDisruptionBudget", "presenced-secrets", "presenced-drain", "promtool",
                 "systemd-analyze", "--check-config", "log_format"):
        check(word in readme, f"deploy/README.md mentions {word}")
    kubectl = shutil.which("kubectl")
    if kubectl:
        r = subprocess.run([kubectl, "kustomize", d], capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            check("presenced-config-" in r.stdout, "kubectl kustomize renders the generated ConfigMap")
        else:
            print("note: kubectl kustomize failed, not checked:", r.stderr.strip()[:200])
    # The systemd unit's hardening.
    with open(os.path.join(a.root, "deploy", "systemd", "presenced.service")) as f:
        unit = f.read()
    for line in ("DynamicUser=yes", "StateDirectory=presenced", "ProtectSystem=strict",
                 "NoNewPrivileges=yes", "CapabilityBoundingSet=", "RestrictAddressFamilies=",
                 "LimitNOFILE=", "ExecStop=-/usr/local/bin/presenced-drain",
                 "/etc/presenced/presenced.toml"):
        check(line in unit, f"presenced.service has {line}")


def test_promtool(a):
    tool = shutil.which("promtool")
    if not tool:
        print("SKIPPED: promtool is not installed (Debian package prometheus; scripts/setup.sh installs it)")
        return SKIP
    d = os.path.join(a.root, "deploy", "prometheus")
    for args in (["check", "rules", "presenced-rules.yml"], ["check", "config", "prometheus.yml"],
                 ["test", "rules", "presenced-rules.test.yml"]):
        r = subprocess.run([tool] + args, cwd=d, capture_output=True, text=True, timeout=30)
        print(r.stdout + r.stderr)
        check(r.returncode == 0, "promtool " + " ".join(args))
    docs = load_yaml_docs(os.path.join(d, "prometheus-kubernetes.yml"))
    check(docs[0]["scrape_configs"][0]["job_name"] == "presenced", "the Kubernetes scrape job is 'presenced'")
    alerts = {r["alert"] for g in load_yaml_docs(os.path.join(d, "presenced-rules.yml"))[0]["groups"]
              for r in g["rules"] if "alert" in r}
    for name in ("PresencedNodeDown", "PresencedNodeNotReady", "PresencedStaleShareSpiking",
                 "PresencedReplicationBacklog", "PresencedReplicationLag",
                 "PresencedIntentsExpiringUndelivered", "PresencedStorageWriteErrors",
                 "PresencedStorageReadErrors"):
        check(name in alerts, f"alert {name} exists")


def test_systemd(a):
    tool = shutil.which("systemd-analyze")
    if not tool:
        print("SKIPPED: systemd-analyze is not installed")
        return SKIP
    src = os.path.join(a.root, "deploy", "systemd")
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(src, "presenced.service")) as f:
            unit = f.read()
        # verify checks that the commands exist: point them at this build.
        unit = unit.replace("/usr/local/bin/presenced-drain", os.path.join(src, "presenced-drain"))
        unit = unit.replace("/usr/local/bin/presenced ", a.presenced + " ")
        path = os.path.join(tmp, "presenced.service")
        with open(path, "w") as f:
            f.write(unit)
        r = subprocess.run([tool, "verify", path], capture_output=True, text=True, timeout=30)
        out = (r.stdout + r.stderr).strip()
        print(out or "systemd-analyze verify: no complaints")
        check(r.returncode == 0 and "presenced.service" not in out,
              "systemd-analyze verify accepts presenced.service")


# Metrics issue 13 asks the dashboard and the alerts for: each must be used by
# one of them (and so is checked against /metrics below).
ISSUE_13_METRICS = {
    "presence_node_ready", "presence_cluster_epoch", "presence_cluster_share",
    "presence_cluster_members", "presence_replication_lag_seconds",
    "presence_intents_finished_total", "presence_intents_by_status",
    "presence_intent_delivery_seconds_bucket", "presence_rooms_by_phase",
    "presence_ws_closed_total", "presence_heartbeat_lateness_seconds_bucket",
    "presence_storage_read_errors_total", "presence_sessions_opened_total",
    "presence_sessions_resumed_total",
}

# Labels a scrape adds (not the node): their values are not checked.
SCRAPE_LABELS = {"job", "instance"}


def exprs_used(root):
    with open(os.path.join(root, "deploy", "grafana", "presenced-dashboard.json")) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    for v in dash["templating"]["list"]:
        if isinstance(v.get("query"), dict):
            exprs.append(v["query"]["query"])
    for g in load_yaml_docs(os.path.join(root, "deploy", "prometheus", "presenced-rules.yml"))[0]["groups"]:
        exprs += [r["expr"] for r in g["rules"]]
    return exprs


def label_selectors(exprs):
    """(name, {label: value}) for every selector with exact matchers (=) on a
    presence_ metric's own labels."""
    out = set()
    for e in exprs:
        for name, body in re.findall(r"\b(presence_[a-z0-9_]+)\{([^}]*)\}", e):
            wanted = tuple(sorted((k, v) for k, v in re.findall(r'(\w+)\s*=\s*"([^"]*)"', body)
                                  if k not in SCRAPE_LABELS))
            if wanted:
                out.add((name, wanted))
    return out


def parse_metrics(text):
    """{name: [labels dict, ...]} of a Prometheus text page."""
    series = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ", line)
        if m:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            series.setdefault(m.group(1), []).append(labels)
    return series


def missing_selectors(selectors, series):
    """The selectors no exported series matches."""
    return sorted(f"{name}{{{','.join(f'{k}={v!r}' for k, v in wanted)}}}"
                  for name, wanted in selectors
                  if not any(all(s.get(k) == v for k, v in wanted) for s in series.get(name, [])))


def metric_names_used(root):
    names = set()
    exprs = exprs_used(root)
    for e in exprs:
        names.update(re.findall(r"\bpresence_[a-z0-9_]+", e))
    return names, len(exprs)


class Node:
    """presenced on 127.0.0.1 with free ports and a temporary data dir."""

    def __init__(self, binary, *flags):
        self.dir = tempfile.mkdtemp(prefix="presenced-deploy-test-")
        self.log_path = os.path.join(self.dir, "log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [binary, "--node.http_port=0", "--node.cluster_port=0", "--node.id=deploy-test",
             "--node.data_dir=" + os.path.join(self.dir, "data"), *flags],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.port = 0
        deadline = time.time() + 20
        while time.time() < deadline and self.proc.poll() is None:
            m = re.search(r"http listening on 127\.0\.0\.1:(\d+)", self.text())
            if m:
                self.port = int(m.group(1))
                try:
                    if urllib.request.urlopen(self.url("/readyz"), timeout=2).status == 200:
                        return
                except Exception:
                    pass
            time.sleep(0.05)
        raise RuntimeError("presenced did not become ready:\n" + self.text())

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path, method="GET", body=None, headers=None):
        req = urllib.request.Request(self.url(path), data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def test_metrics(a):
    names, n_exprs = metric_names_used(a.root)
    check(len(names) > 20, f"the dashboard and rules use metrics ({len(names)} names, {n_exprs} expressions)")
    node = Node(a.presenced, "--auth.mode=dev")
    try:
        # Requests first: per-route counters and histograms appear with their first request.
        node.get("/healthz")
        st, body = node.get("/v1/sessions", "POST", b'{"device":"laptop"}', {"X-User": "alice"})
        check(st in (200, 201), f"a session opens ({st} {body})")
        node.get("/v1/users/alice/presence", headers={"X-User": "bob"})
        time.sleep(0.3)
        st, text = node.get("/metrics")
        check(st == 200, "/metrics answers 200")
        exported = set()
        for line in text.splitlines():
            if line and not line.startswith("#"):
                exported.add(re.split(r"[{ ]", line, 1)[0])
        missing = sorted(n for n in names if n not in exported)
        check(not missing, "every metric the dashboard and rules use is in /metrics; missing: "
              + ", ".join(missing))
        print(f"{len(names)} metric names used, all among the {len(exported)} series names of /metrics")
        unused = sorted(ISSUE_13_METRICS - names)
        check(not unused, "the dashboard or the rules use every metric of issue 13; unused: "
              + ", ".join(unused))
        # Label values the dashboard and rules select (status="expired", code="1013",
        # le="0", ...) exist from the start: they come from fixed tables.
        series = parse_metrics(text)
        selectors = label_selectors(exprs_used(a.root))
        check(len(selectors) >= 3, f"the dashboard and rules select label values ({len(selectors)})")
        bad = missing_selectors(selectors, series)
        check(not bad, "every label value the dashboard and rules select is in /metrics; missing: "
              + ", ".join(bad))
        # The check itself finds a value that is not there.
        check(missing_selectors({("presence_ws_closed_total", (("code", "4000"),))}, series),
              "a made-up label value is reported missing")
        print(f"{len(selectors)} label selections, all in /metrics")
    finally:
        node.close()


def test_check_config(a):
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data-must-not-exist")
        good = subprocess.run([a.presenced, "--config", os.path.join(a.root, "deploy", "presenced.toml"),
                               "--check-config", "--node.bind=127.0.0.1", "--node.data_dir=" + data,
                               "--auth.secret=0123456789abcdef0123"],
                              capture_output=True, text=True, timeout=10)
        print(good.stdout + good.stderr)
        check(good.returncode == 0, "--check-config accepts deploy/presenced.toml (exit 0)")
        check(good.stdout.startswith("presenced: configuration OK") and good.stdout.count("\n") == 1,
              "--check-config prints one short line")
        check("auth.mode jwt" in good.stdout and "3 seeds" in good.stdout, "the line shows auth.mode and seeds")
        check(not os.path.exists(data), "--check-config opens no storage")
        # The same file for Kubernetes.
        k = subprocess.run([a.presenced, "--config", os.path.join(a.root, "deploy", "kubernetes", "presenced.toml"),
                            "--check-config", "--auth.secret=0123456789abcdef0123"],
                           capture_output=True, text=True, timeout=10)
        check(k.returncode == 0, "--check-config accepts deploy/kubernetes/presenced.toml: " + k.stderr)
        bad_file = os.path.join(tmp, "bad.toml")
        with open(bad_file, "w") as f:
            f.write('[node]\nlog_format = "xml"\n[presence]\ngrace_ms = 5000\n')
        bad = subprocess.run([a.presenced, "--config", bad_file, "--check-config"],
                             capture_output=True, text=True, timeout=10)
        print(bad.stdout + bad.stderr)
        check(bad.returncode == 2, "--check-config refuses a bad value (exit 2)")
        check("node.log_format" in bad.stderr, "the message names node.log_format")
        typo = subprocess.run([a.presenced, "--check-config", "--presence.grace_ms=soon"],
                              capture_output=True, text=True, timeout=10)
        check(typo.returncode == 2 and "presence.grace_ms" in typo.stderr,
              "a bad flag names its key: " + typo.stderr)
        unknown = subprocess.run([a.presenced, "--config", bad_file.replace("bad", "none"), "--check-config"],
                                 capture_output=True, text=True, timeout=10)
        check(unknown.returncode == 2 and "--config" in unknown.stderr, "a missing file is named")
        # It binds nothing: a port that is taken does not matter.
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        r = subprocess.run([a.presenced, "--check-config", f"--node.http_port={busy}"],
                           capture_output=True, text=True, timeout=10)
        s.close()
        check(r.returncode == 0, "--check-config binds no port")


def test_json_logs(a):
    node = Node(a.presenced, "--node.log_format=json", "--auth.mode=dev")
    try:
        node.get("/healthz")
        code = node.stop()
        check(code == 0, f"the node stops with exit 0 (got {code})")
        lines = node.text().splitlines()
        check(len(lines) >= 5, f"the node logged ({len(lines)} lines)")
        msgs = []
        for line in lines:
            try:
                obj = json.loads(line)
            except ValueError:
                check(False, "a log line that is not one JSON object: " + line)
                continue
            check(isinstance(obj, dict) and {"ts", "level", "node", "msg"} <= set(obj),
                  "a log line has ts, level, node and msg: " + line)
            msgs.append(obj.get("msg", ""))
        check("ready" in msgs, "the 'ready' line is there")
        check(any(m.startswith("http listening on") for m in msgs), "the port line is there")
        check(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", json.loads(lines[0])["ts"]) is not None,
              "ts is UTC ISO 8601 with milliseconds")
    finally:
        node.close()


def test_entrypoint(a):
    script = os.path.join(a.root, "deploy", "kubernetes", "entrypoint.sh")
    config = os.path.join(a.root, "deploy", "kubernetes", "presenced.toml")

    def run(pod, replicas, *extra, secret=True, env_extra=None):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "POD_NAME": pod, "POD_IP": "127.0.0.1",
               "POD_NAMESPACE": "prod", "REPLICAS": str(replicas), "CONFIG": config,
               "DATA_DIR": "/nonexistent/presenced", "PRESENCED_BIN": a.presenced}
        if secret:
            env["PRESENCED_AUTH_SECRET"] = "0123456789abcdef0123"
        env.update(env_extra or {})
        # --check-config last: presenced validates what the entrypoint built and exits.
        return subprocess.run(["/bin/sh", script, *extra, "--check-config"], env=env,
                              capture_output=True, text=True, timeout=10)

    r = run("presenced-1", 3)
    print(r.stdout + r.stderr)
    check(r.returncode == 0, "pod presenced-1 of 3 starts")
    check("node 'presenced-1'" in r.stdout and "2 seeds" in r.stdout, "node id from the pod name, two seeds")
    check("presenced-0.presenced-peers.prod.svc.cluster.local:7400" in r.stderr
          and "presenced-2.presenced-peers.prod.svc.cluster.local:7400" in r.stderr
          and "presenced-1.presenced-peers.prod.svc.cluster.local:7400" not in r.stderr,
          "seeds are the other pods' DNS names")
    check("advertised as presenced-1.presenced-peers.prod.svc.cluster.local" in r.stdout,
          "node.advertise is the pod's DNS name, as the seeds spell it: " + r.stdout)
    r = run("presenced-4", 5)
    check(r.returncode == 0 and "3 seeds" in r.stdout, "at most SEED_COUNT (3) seeds: " + r.stdout)
    r = run("presenced-0", 3, "--auth.mode=dev")
    print(r.stderr)
    check(r.returncode == 2 and "refusing auth.mode" in r.stderr, "dev auth with 3 replicas is refused")
    r = run("presenced-2", 1, "--auth.mode=dev")
    check(r.returncode == 2 and "refusing auth.mode" in r.stderr, "dev auth on a pod past ordinal 0 is refused")
    r = run("presenced-0", 1, "--auth.mode=dev")
    check(r.returncode == 0 and "0 seeds" in r.stdout and "auth.mode dev" in r.stdout,
          "one replica may run dev auth: " + r.stdout + r.stderr)
    r = run("presenced-1", 3, secret=False)
    check(r.returncode == 2 and "auth.secret" in r.stderr, "a missing secret stops the pod, naming auth.secret")
    # The test seam (unset in the StatefulSet): hosts from a format, ports apart.
    r = run("presenced-1", 3, env_extra={"PEER_HOST_FORMAT": "pod-{i}.test", "PEER_PORT_STEP": "10"})
    check(r.returncode == 0 and "seeds: pod-0.test:7400,pod-2.test:7420" in r.stderr
          and "advertised as pod-1.test" in r.stdout and "cluster port 7410" in r.stdout,
          "PEER_HOST_FORMAT and PEER_PORT_STEP move the hosts and ports: " + r.stdout + r.stderr)
    r = run("presenced-1", 3, env_extra={"PEER_PORT_STEP": "x"})
    check(r.returncode == 2 and "PEER_PORT_STEP" in r.stderr, "a bad PEER_PORT_STEP is refused")


# --- Several nodes on loopback (statefulset, replication_lag) -------------------

def free_ports(n, consecutive=False):
    """n ports free on 127.0.0.1 now (consecutive ones when asked)."""
    for _ in range(200):
        if consecutive:
            base = random.randint(20000, 60000)
            wanted = list(range(base, base + n))
        else:
            wanted = [0] * n
        socks = []
        try:
            for p in wanted:
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return [s.getsockname()[1] for s in socks]
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free ports on 127.0.0.1")


def http(port, method, path, body=None, token=None, user=None, timeout=5):
    """(status, parsed JSON or text); status 0 when the node did not answer."""
    headers = {}
    if token:
        headers["Authorization"] = "Bearer " + token
    if user:
        headers["X-User"] = user
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    except (OSError, ValueError) as e:
        return 0, str(e)
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def metric(port, name):
    """The value of one series of a node's /metrics (name with its labels as
    printed, e.g. presence_cluster_members{status="up"}), or None."""
    st, text = http(port, "GET", "/metrics", timeout=3)
    if st != 200:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def poll(what, fn, timeout, interval=0.1):
    """Calls fn until it returns a true value or `timeout` seconds pass;
    returns that value, or None after the deadline (and says so)."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() >= deadline:
            print(f"deadline: {what} (after {timeout} s)")
            return None
        time.sleep(interval)


class Proc:
    """A node process started by this test (killed by pid, never by name)."""

    def __init__(self, name, argv, env, http_port, log_path):
        self.name, self.argv, self.env, self.http = name, argv, env, http_port
        self.log_path = log_path
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def ready(self):
        return self.alive() and http(self.http, "GET", "/readyz", timeout=2)[0] == 200

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def stop(self, timeout=30):
        """SIGTERM, then the exit code (SIGKILL past the timeout: None)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.log.close()
                return None
        self.log.close()
        return self.proc.returncode


def wait_ready(procs, timeout):
    def all_ready():
        for p in procs:
            if not p.alive():
                return "exited"
        return all(p.ready() for p in procs)
    r = poll("every node answers /readyz 200", all_ready, timeout)
    if r == "exited" or not r:
        for p in procs:
            print(f"--- {p.name} ({'running' if p.alive() else 'exited'}) log tail:")
            print(p.text()[-3000:])
        return False
    return True


def one_view(procs, token, ids):
    """The view (epoch, member ids) every node agrees on, with every member up
    and ready, or None."""
    views = []
    for p in procs:
        st, v = http(p.http, "GET", "/v1/cluster", token=token, timeout=3)
        if st != 200 or not isinstance(v, dict):
            return None
        nodes = v.get("nodes", [])
        if any(n.get("status") != "up" for n in nodes):
            return None
        views.append((v.get("epoch"), tuple(sorted(n.get("id") for n in nodes))))
    if len(set(views)) != 1 or views[0][1] != tuple(sorted(ids)):
        return None
    for p in procs:
        if metric(p.http, "presence_cluster_epoch") != views[0][0] \
                or metric(p.http, 'presence_cluster_members{status="up"}') != len(ids) \
                or metric(p.http, "presence_node_ready") != 1:
            return None
    return views[0]


def mint(a, secret, user, role="user"):
    r = subprocess.run([a.presencectl, "token", "--secret", secret, "--user", user,
                        "--role", role, "--ttl-s", "3600"], capture_output=True, text=True,
                       timeout=10)
    if r.returncode != 0:
        raise RuntimeError("presencectl token: " + r.stderr)
    return r.stdout.strip()


def pod_env(container, pod, namespace, secrets, extra):
    """The container's environment as the StatefulSet sets it for `pod`, on
    loopback: the downward API gives the pod name, namespace and 127.0.0.1, the
    Secret its keys; literal values are copied."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for e in container["env"]:
        if "value" in e:
            env[e["name"]] = str(e["value"])
            continue
        src = e.get("valueFrom", {})
        field = src.get("fieldRef", {}).get("fieldPath")
        key = src.get("secretKeyRef", {}).get("key")
        if field == "metadata.name":
            env[e["name"]] = pod
        elif field == "metadata.namespace":
            env[e["name"]] = namespace
        elif field == "status.podIP":
            env[e["name"]] = "127.0.0.1"
        elif key in secrets:
            env[e["name"]] = secrets[key]
        else:
            raise RuntimeError(f"the test does not know how to set env {e['name']}: {src}")
    env.update(extra)
    return env


def test_statefulset(a):
    """Three pods of the StatefulSet started at once through entrypoint.sh on
    loopback, then a rolling update as Kubernetes runs it."""
    t0 = time.time()
    d, docs = k8s(a.root)
    sts = one(docs, "StatefulSet", "presenced")
    spec = sts["spec"]
    check(spec.get("podManagementPolicy") == "Parallel",
          "the StatefulSet starts its pods together (podManagementPolicy: Parallel)")
    c = spec["template"]["spec"]["containers"][0]
    replicas = spec["replicas"]
    names = [f"presenced-{i}" for i in range(replicas)]
    script = os.path.join(d, "entrypoint.sh")
    check(c["command"][-1] == "/etc/presenced/entrypoint.sh", "the container runs the entrypoint")
    pre = list(c["lifecycle"]["preStop"]["exec"]["command"])
    check(":8080" in pre[-1], "the preStop command names the pod's HTTP port 8080")
    secrets = {"auth-secret": "deploy-test-auth-" + os.urandom(8).hex(),
               "cluster-secret": "deploy-test-cluster-" + os.urandom(8).hex()}
    admin = mint(a, secrets["auth-secret"], "deploy-admin", "admin")
    tmp = tempfile.mkdtemp(prefix="presenced-statefulset-test-")
    cbase = free_ports(replicas, consecutive=True)[0]
    https = free_ports(replicas)
    # Every pod gets the same environment but its name (as in the set), plus
    # the loopback seam: all pods on 127.0.0.1, pod i's cluster port cbase + i,
    # and its HTTP port (8080 in presenced.toml) moved apart.
    bindir = os.path.dirname(a.presencectl)
    pods = []
    for i, name in enumerate(names):
        env = pod_env(c, name, "deploy-test", secrets, {
            "PATH": bindir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
            "CONFIG": os.path.join(d, "presenced.toml"),
            "DATA_DIR": os.path.join(tmp, name),
            "PRESENCED_BIN": a.presenced,
            "PEER_HOST_FORMAT": "127.0.0.1",
            "CLUSTER_PORT": str(cbase),
            "PEER_PORT_STEP": "1",
            "PRESENCED_NODE_HTTP_PORT": str(https[i]),
        })
        pods.append(Proc(name, [c["command"][0], script], env, https[i],
                         os.path.join(tmp, name + ".log")))
    try:
        # All at once, as podManagementPolicy: Parallel starts them.
        for p in pods:
            p.start()
        if not wait_ready(pods, 60):
            check(False, "the three pods started together become ready")
            return
        view = poll("one view of the three pods on every node",
                    lambda: one_view(pods, admin, names), 30)
        check(view is not None, "the pods started together form exactly one cluster")
        if view is None:
            for p in pods:
                print(p.name, http(p.http, "GET", "/v1/cluster", token=admin))
            return
        founders = [p.name for p in pods if "founds one" in p.text()]
        check(founders == ["presenced-0"], f"only presenced-0 founds the cluster: {founders}")
        print(f"parallel start: one cluster, epoch {view[0]}, members {list(view[1])}, "
              f"{time.time() - t0:.1f} s")

        # Users with sessions in two rooms, through every pod, and intents.
        users = ["alice", "bob", "carol", "dave", "erin", "frank"]
        tokens = {u: mint(a, secrets["auth-secret"], u) for u in users}
        sessions, rooms, intents = {}, {}, {}

        def retry(what, fn, timeout=20):
            return poll(what, fn, timeout, interval=0.2)

        for k, u in enumerate(users):
            p = pods[k % len(pods)]
            room = f"room-{k % 2}"
            r = retry(f"{u} opens a session", lambda: (lambda st, v: v if st == 201 else None)(
                *http(p.http, "POST", "/v1/sessions", {"device": "deploy-test", "rooms": [room]},
                      token=tokens[u])))
            check(r is not None, f"{u} opens a session on {p.name} in {room}")
            if r:
                sessions[r["session_id"]] = u
                rooms.setdefault(room, set()).add(u)
        for k, (f, t) in enumerate([("alice", "bob"), ("carol", "dave"), ("erin", "frank")]):
            p = pods[k % len(pods)]
            r = retry(f"intent {f}->{t}", lambda: (lambda st, v: v if st == 201 else None)(
                *http(p.http, "POST", "/v1/intents", {"to_user": t, "ttl_ms": 600000},
                      token=tokens[f])))
            check(r is not None, f"{f} sends {t} an intent")
            if r:
                intents[r["intent_id"]] = (f, t)

        def user_view(p, u):
            st, v = http(p.http, "GET", f"/v1/users/{u}/presence", token=admin)
            return v if st == 200 and v.get("last_active_at") else None

        before = {}
        for u in users:
            v = retry(f"{u}'s presence", lambda: user_view(pods[0], u))
            check(v is not None, f"{u} reads with a last_active_at before the update")
            before[u] = v["last_active_at"] if v else None
        for rid, members in rooms.items():
            st, v = http(pods[0].http, "GET", f"/v1/rooms/{rid}", token=admin)
            check(st == 200 and {m["user_id"] for m in v["members"]} == members,
                  f"{rid} has members {sorted(members)} before the update: {v}")
        print(f"created {len(sessions)} sessions, {len(rooms)} rooms, {len(intents)} intents")

        # The rolling update, as the StatefulSet controller runs it: the
        # highest ordinal first; preStop (the drain), SIGTERM, the new pod
        # through the entrypoint, and the next one once it is ready.
        for p in reversed(pods):
            t1 = time.time()
            cmd = pre[:-1] + [pre[-1].replace(":8080", f":{p.http}")]
            r = subprocess.run(cmd, env=p.env, capture_output=True, text=True, timeout=150)
            print(f"{p.name} preStop: {(r.stdout + r.stderr).strip()}")
            check(f"{p.name} is drained" in r.stdout, f"the preStop hook drains {p.name}")
            code = p.stop()
            check(code == 0, f"{p.name} stops cleanly on SIGTERM after its drain (exit {code})")
            p.start()
            ok = wait_ready([p], 60)
            check(ok, f"{p.name} is ready again after its restart")
            if not ok:
                return
            print(f"{p.name}: drained, stopped, restarted, ready in {time.time() - t1:.1f} s")

        view2 = poll("one view after the rolling update", lambda: one_view(pods, admin, names), 30)
        check(view2 is not None, "after the rolling update the three pods are one cluster again")

        # Nothing lost: every id reads the same on every pod.
        def session_ok(p, sid, u):
            st, v = http(p.http, "GET", f"/v1/sessions/{sid}", token=admin)
            return st == 200 and v.get("user_id") == u
        for p in pods:
            for sid, u in sessions.items():
                check(retry(f"{sid} on {p.name}", lambda: session_ok(p, sid, u), 15),
                      f"session {sid} of {u} reads on {p.name} after the update: "
                      f"{http(p.http, 'GET', f'/v1/sessions/{sid}', token=admin)}")
            for u in users:
                v = retry(f"{u} on {p.name}", lambda: user_view(p, u), 15)
                check(v is not None and v["last_active_at"] == before[u],
                      f"{u} keeps last_active_at {before[u]} on {p.name}: "
                      f"{v and v['last_active_at']}")
                check(v is not None and len(v["sessions"]) == 1,
                      f"{u} still has its session on {p.name}: {v}")
            for rid, members in rooms.items():
                def room_ok():
                    st, v = http(p.http, "GET", f"/v1/rooms/{rid}", token=admin)
                    return st == 200 and {m["user_id"] for m in v["members"]} == members
                check(retry(f"{rid} on {p.name}", room_ok, 15),
                      f"{rid} keeps its members {sorted(members)} on {p.name}: "
                      f"{http(p.http, 'GET', f'/v1/rooms/{rid}', token=admin)}")
            for iid, (f, t) in intents.items():
                def intent_ok():
                    st, v = http(p.http, "GET", f"/v1/intents/{iid}", token=admin)
                    return st == 200 and v.get("from_user") == f and v.get("to_user") == t \
                        and v.get("status") in ("pending", "delivered")
                check(retry(f"{iid} on {p.name}", intent_ok, 15),
                      f"intent {iid} ({f} -> {t}) reads on {p.name}: "
                      f"{http(p.http, 'GET', f'/v1/intents/{iid}', token=admin)}")
        print(f"rolling update: nothing lost; total {time.time() - t0:.1f} s")
    finally:
        for p in pods:
            p.stop()
        if failures:
            for p in pods:
                print(f"--- {p.name} log tail:\n" + p.text()[-4000:])
        shutil.rmtree(tmp, ignore_errors=True)


def lag_threshold(root):
    """The threshold of the PresencedReplicationLag alert (its `lag > N`)."""
    for g in load_yaml_docs(os.path.join(root, "deploy", "prometheus", "presenced-rules.yml"))[0]["groups"]:
        for r in g["rules"]:
            if r.get("alert") == "PresencedReplicationLag":
                m = re.fullmatch(r"\s*presence_replication_lag_seconds\s*>\s*([0-9.]+)\s*", r["expr"])
                if m:
                    return float(m.group(1))
                check(False, "PresencedReplicationLag is `presence_replication_lag_seconds > N`: "
                      + r["expr"])
    check(False, "the rules have PresencedReplicationLag")
    return None


def test_replication_lag(a):
    """A replica peer that is stuck (SIGSTOP) shows as replication lag on the
    node whose changes wait for it, past the alert's threshold; it reads 0
    again once the peer goes on (SIGCONT)."""
    t0 = time.time()
    threshold = lag_threshold(a.root)
    if threshold is None:
        return
    tmp = tempfile.mkdtemp(prefix="presenced-lag-test-")
    cports = free_ports(2)
    https = free_ports(2)
    seeds = ",".join(f"127.0.0.1:{p}" for p in cports)
    # A peer stopped for longer than the threshold must stay a member: the
    # failure timeout (and the stopped node's own pause detection) is above
    # the stop.
    failure_ms = int((threshold + 25) * 1000)
    nodes = []
    for i, name in enumerate(["lag-a", "lag-b"]):
        argv = [a.presenced, f"--node.id={name}", "--node.bind=127.0.0.1",
                f"--node.http_port={https[i]}", f"--node.cluster_port={cports[i]}",
                f"--node.seeds={seeds}", f"--node.data_dir={os.path.join(tmp, name)}",
                "--auth.mode=dev", "--cluster.replication_factor=2",
                f"--cluster.failure_timeout_ms={failure_ms}"]
        nodes.append(Proc(name, argv, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                          https[i], os.path.join(tmp, name + ".log")))
    sender, peer = nodes
    stop_traffic = threading.Event()
    sent = {"ok": 0, "failed": 0}
    traffic = None
    try:
        for p in nodes:
            p.start()
        if not wait_ready(nodes, 60):
            check(False, "the two nodes start")
            return
        check(poll("one view of two", lambda: all(
            metric(p.http, 'presence_cluster_members{status="up"}') == 2 for p in nodes), 30),
            "the two nodes form one cluster")
        # Sessions opened through the sender live there (their ids end in
        # @lag-a); their changes go to lag-b, the only other node.
        sids = []
        for k in range(20):
            st, v = http(sender.http, "POST", "/v1/sessions", {"device": "lag"}, user=f"lag-user-{k}")
            check(st == 201, f"a session opens on lag-a ({st} {v})")
            if st == 201:
                sids.append((f"lag-user-{k}", v["session_id"]))

        def signal_loop():
            k = 0
            while not stop_traffic.is_set():
                u, sid = sids[k % len(sids)]
                sig = "active" if (k // len(sids)) % 2 == 0 else "background"
                st, _ = http(sender.http, "POST", f"/v1/sessions/{sid}/signal", {"signal": sig},
                             user=u, timeout=2)
                sent["ok" if st in (200, 202, 204) else "failed"] += 1
                k += 1
                stop_traffic.wait(0.01)

        traffic = threading.Thread(target=signal_loop, daemon=True)
        traffic.start()
        # Healthy: changes replicate and the lag stays far under the threshold.
        base = metric(sender.http, "presence_replicated_total") or 0
        check(poll("changes replicate", lambda: (metric(sender.http, "presence_replicated_total") or 0)
                   > base + 20, 20), "signals on lag-a are replicated")
        healthy = [metric(sender.http, "presence_replication_lag_seconds") for _ in range(10)]
        check(all(x is not None and x < 1 for x in healthy),
              f"with both nodes running the lag stays under 1 s: {healthy}")

        # lag-b stuck: the sender's changes wait for it.
        ok_before = sent["ok"]
        peer.signal(signal.SIGSTOP)
        t_stop = time.time()
        seen = {"lag": 0.0, "pending": 0.0}

        def lag_above():
            lag = metric(sender.http, "presence_replication_lag_seconds") or 0.0
            pending = metric(sender.http, "presence_replication_pending") or 0.0
            seen["lag"], seen["pending"] = max(seen["lag"], lag), max(seen["pending"], pending)
            return lag > threshold
        rose = poll(f"lag above {threshold} s", lag_above, threshold + 15, interval=0.25)
        stuck_for = time.time() - t_stop
        peer.signal(signal.SIGCONT)
        check(rose, f"while lag-b is stopped, lag-a's presence_replication_lag_seconds rises "
              f"above the alert's {threshold} s (max seen {seen['lag']} s after {stuck_for:.1f} s "
              f"stopped; pending at most {seen['pending']:.0f}; {sent['ok'] - ok_before} signals "
              f"answered meanwhile)")
        check(seen["pending"] > 0, f"presence_replication_pending counts the changes waiting "
              f"for lag-b ({seen['pending']:.0f})")
        check(sent["ok"] > ok_before, "signals to lag-a are answered while lag-b is stopped")
        print(f"lag-b stopped {stuck_for:.1f} s: lag-a's lag reached {seen['lag']} s, "
              f"pending {seen['pending']:.0f}")

        # lag-b goes on: the lag returns to 0 (traffic stopped, nothing waits).
        t_cont = time.time()
        stop_traffic.set()
        traffic.join(10)
        back = poll("lag and pending back to 0", lambda: metric(
            sender.http, "presence_replication_lag_seconds") == 0.0 and metric(
            sender.http, "presence_replication_pending") == 0.0, 20)
        check(back, "after SIGCONT lag-a's lag and pending return to 0: lag "
              f"{metric(sender.http, 'presence_replication_lag_seconds')}, pending "
              f"{metric(sender.http, 'presence_replication_pending')}")
        check(peer.alive() and sender.alive(), "both nodes still run")
        check(poll("still one view of two", lambda: all(
            metric(p.http, 'presence_cluster_members{status="up"}') == 2 for p in nodes), 10),
            "lag-b stayed a member")
        print(f"back to 0 in {time.time() - t_cont:.1f} s; total {time.time() - t0:.1f} s")
    finally:
        stop_traffic.set()
        if traffic:
            traffic.join(10)
        for p in nodes:
            p.stop()
        if failures:
            for p in nodes:
                print(f"--- {p.name} log tail:\n" + p.text()[-3000:])
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("check")
    p.add_argument("--root", required=True)
    p.add_argument("--presenced", required=True)
    p.add_argument("--presencectl", required=True)
    a = p.parse_args()
    a.root = os.path.abspath(a.root)
    a.presenced = os.path.abspath(a.presenced)
    a.presencectl = os.path.abspath(a.presencectl)
    fn = globals().get("test_" + a.check)
    if fn is None:
        print("unknown check", a.check)
        return 2
    rc = fn(a)
    if rc == SKIP:
        return SKIP
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("passed:", a.check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
