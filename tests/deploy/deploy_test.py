#!/usr/bin/env python3
"""Checks the operator files under deploy/ (run by ctest, tests/deploy/CMakeLists.txt).

    deploy_test.py CHECK --root REPO --presenced BIN --presencectl BIN

CHECK is one of: manifests, promtool, systemd, metrics, check_config, json_logs,
entrypoint. Exit 0: passed; 1: failed (the reason is printed); 77: skipped
because a tool is not installed (promtool, systemd-analyze).
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
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

    def run(pod, replicas, *extra, secret=True):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "POD_NAME": pod, "POD_IP": "127.0.0.1",
               "POD_NAMESPACE": "prod", "REPLICAS": str(replicas), "CONFIG": config,
               "DATA_DIR": "/nonexistent/presenced", "PRESENCED_BIN": a.presenced}
        if secret:
            env["PRESENCED_AUTH_SECRET"] = "0123456789abcdef0123"
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
