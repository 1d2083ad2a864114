// Starts a real presenced on 127.0.0.1 (free port, temp data dir, dev auth with
// a known secret so tests can mint tokens, short thresholds); stop() by pid.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { createHmac } from 'node:crypto';

export const SECRET = 'client-tests-secret-0123456789abcdef';

const freePort = () =>
  new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
    s.on('error', rej);
  });

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function token(sub, role = 'user', ttlS = 3600) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = b64({ alg: 'HS256', typ: 'JWT' }) + '.' + b64({ sub, role, exp: Math.floor(Date.now() / 1000) + ttlS });
  return head + '.' + createHmac('sha256', SECRET).update(head).digest('base64url');
}

// Thresholds under which a test's "is X active?" holds for as long as the test
// takes, even on a loaded machine. The defaults below (3 s active window) make
// every client that sends no input (Node, headless pages) idle 3 s after its
// hello: a test that waits for "active" on a 2-core machine at -j2 then times
// out or sees an idle/cooling it did not expect. Pass STEADY to startServer()
// unless the test is about the decay itself.
export const STEADY = [
  '--presence.active_window_ms=30000', '--presence.idle_after_ms=45000',
  '--presence.stale_after_ms=60000', '--presence.offline_after_ms=90000',
];

/**
 * Starts a node. `extra`: more flags; one naming a key already set here
 * replaces it (presenced refuses a key given twice).
 */
export async function startServer(extra = []) {
  const bin = process.env.PRESENCED;
  if (!bin) throw new Error('PRESENCED is not set');
  const port = await freePort();
  const clusterPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'presenced-js-'));
  const flags = new Map();
  for (const f of [
    `--node.http_port=${port}`, `--node.cluster_port=${clusterPort}`, `--node.data_dir=${dir}`,
    '--auth.mode=dev', `--auth.secret=${SECRET}`,
    '--presence.active_window_ms=3000', '--presence.idle_after_ms=6000',
    '--presence.stale_after_ms=20000', '--presence.offline_after_ms=30000', '--presence.grace_ms=1000',
    '--presence.heartbeat_active_ms=2000', '--presence.heartbeat_idle_ms=3000', '--presence.heartbeat_background_ms=5000',
    '--rooms.timeline_interval_ms=500',
    ...extra,
  ])
    flags.set(f.split('=')[0], f);
  const args = [...flags.values()];
  const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (d) => (log = (log + d).slice(-20000)));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(url + '/readyz')).status === 200) break;
    } catch {}
    if (i > 150 || proc.exitCode !== null) throw new Error('presenced did not start:\n' + log);
    await sleep(100);
  }
  const server = {
    url, port, proc, dir,
    log: () => log,
    async stop() {
      if (proc.exitCode === null) {
        process.kill(proc.pid, 'SIGTERM');
        await Promise.race([new Promise((r) => proc.once('exit', r)), sleep(10000)]);
        if (proc.exitCode === null) process.kill(proc.pid, 'SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  server.features = await detect(url);
  return server;
}

// Protocol 1.1 on this server? An upgrade without a token is accepted only
// where hello {token} is; the pagehide leave answers 404 session_not_found.
async function detect(url) {
  // (A WebSocket probe without a token crashed the 20:06 build: SIGSEGV. So the
  // pagehide leave stands for 1.1; PRESENCED_JS_TRANSPORT=query forces ?token=.)
  let body = '';
  for (let i = 0; i < 3 && !body; i++) {
    try {
      const r = await fetch(url + '/v1/sessions/s_none/leave', { method: 'POST', body: '{"resume_token":"x","after_ms":0}' });
      body = await r.text();
    } catch {} // a keep-alive connection the node had closed
  }
  const pagehideLeave = body.includes('session_not_found');
  return { helloToken: pagehideLeave && process.env.PRESENCED_JS_TRANSPORT !== 'query', pagehideLeave };
}

/**
 * Waits until pred(view.get()) holds, checked on every change of the view (a
 * state that holds only between two polls is not missed), or fails with what.
 */
export function settle(view, pred, what, ms = 10000) {
  return new Promise((resolve, reject) => {
    let off = null;
    const finish = (err, v) => {
      clearTimeout(timer);
      if (off) off();
      off = null;
      err ? reject(err) : resolve(v);
    };
    const timer = setTimeout(() => finish(new Error('timed out waiting for ' + what + ': ' + JSON.stringify(view.get()))), ms);
    const check = (v) => {
      try {
        if (pred(v)) finish(null, v);
      } catch (e) {
        finish(e);
      }
    };
    off = view.subscribe((v) => check(v));
    if (off) check(view.get());
  });
}

/** Waits until f() is truthy (polling), or fails with what. */
export async function until(f, what, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(50);
  }
}
