// Fakes for the unit tests: an injected clock, sockets, fetch, storage,
// BroadcastChannel and a page (window/document/navigator).
import { PresenceClient } from '../../src/index.js';

export const flush = async (n = 3) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

export class FakeClock {
  constructor(t = 1_700_000_000_000) {
    this.t = t;
    this.q = [];
    this.seq = 0;
  }
  now() {
    return this.t;
  }
  setTimeout(f, ms) {
    const id = ++this.seq;
    this.q.push({ id, at: this.t + Math.max(0, ms || 0), f });
    return id;
  }
  clearTimeout(id) {
    this.q = this.q.filter((x) => x.id !== id);
  }
  /** Runs every timer due within ms, in order, letting promises settle between them. */
  async advance(ms) {
    const end = this.t + ms;
    for (;;) {
      await flush();
      const due = this.q.filter((x) => x.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.q = this.q.filter((x) => x !== due);
      this.t = due.at;
      due.f();
    }
    this.t = end;
    await flush();
  }
}

export function sockets() {
  const all = [];
  class FakeSocket {
    constructor(url) {
      this.url = url;
      this.sent = [];
      all.push(this);
    }
    send(s) {
      this.sent.push(JSON.parse(s));
    }
    close(code) {
      this.closed = code ?? 1005;
    }
    open() {
      this.onopen && this.onopen();
    }
    recv(m) {
      this.onmessage && this.onmessage({ data: JSON.stringify(m) });
    }
    drop(code = 1006) {
      this.onclose && this.onclose({ code });
    }
    ops() {
      return this.sent.map((m) => m.op);
    }
    last(op) {
      return this.sent.filter((m) => m.op === op).at(-1);
    }
  }
  return { FakeSocket, all };
}

/** fetch whose answers come from handler(method, path, body) → {status, body, headers}. */
export function fakeFetch(handler = () => ({ status: 200, body: { status: 'ready' } })) {
  const calls = [];
  const f = async (url, init = {}) => {
    const u = new URL(url);
    const body = init.body ? JSON.parse(init.body) : undefined;
    calls.push({ method: init.method || 'GET', path: u.pathname + u.search, body, init });
    const r = (await handler(init.method || 'GET', u.pathname, body)) || { status: 200, body: {} };
    const headers = new Map(Object.entries(r.headers || {}).map(([k, v]) => [k.toLowerCase(), String(v)]));
    return {
      status: r.status,
      ok: r.status >= 200 && r.status < 300,
      headers: { get: (k) => headers.get(k.toLowerCase()) ?? null },
      text: async () => (r.body === undefined ? '' : JSON.stringify(r.body)),
    };
  };
  f.calls = calls;
  return f;
}

export class MemoryStorage {
  constructor(entries) {
    this.m = new Map(entries);
  }
  getItem(k) {
    return this.m.has(k) ? this.m.get(k) : null;
  }
  setItem(k, v) {
    this.m.set(k, String(v));
  }
  removeItem(k) {
    this.m.delete(k);
  }
  /** What a duplicated tab gets: a copy. */
  copy() {
    return new MemoryStorage(this.m);
  }
}

/** BroadcastChannel between the tabs of one fake browser. */
export function channelHub() {
  const chans = new Set();
  return class FakeChannel {
    constructor(name) {
      this.name = name;
      chans.add(this);
    }
    postMessage(d) {
      for (const c of chans)
        if (c !== this && c.name === this.name) queueMicrotask(() => c.onmessage && c.onmessage({ data: structuredClone(d) }));
    }
    close() {
      chans.delete(this);
    }
  };
}

export function fakePage() {
  const window = new EventTarget();
  const document = new EventTarget();
  document.visibilityState = 'visible';
  const beacons = [];
  const navigator = {
    sendBeacon: (url, body) => {
      beacons.push({ url, body: JSON.parse(body) });
      return true;
    },
  };
  const fire = (target, type, props = {}) => target.dispatchEvent(Object.assign(new Event(type), props));
  return {
    env: { window, document, navigator },
    beacons,
    input: () => fire(window, 'pointerdown'),
    hide: () => {
      document.visibilityState = 'hidden';
      fire(document, 'visibilitychange');
    },
    show: () => {
      document.visibilityState = 'visible';
      fire(document, 'visibilitychange');
    },
    freeze: () => fire(document, 'freeze'),
    resume: () => fire(document, 'resume'),
    pagehide: (persisted) => fire(window, 'pagehide', { persisted }),
    pageshow: (persisted) => fire(window, 'pageshow', { persisted }),
    online: () => fire(window, 'online'),
  };
}

export function setup(over = {}) {
  const clock = over.clock || new FakeClock();
  const ws = over.ws || sockets();
  const fetch = over.fetch || fakeFetch();
  const storage = over.storage === undefined ? new MemoryStorage() : over.storage;
  const client = new PresenceClient({
    url: 'http://127.0.0.1:9',
    token: 'T',
    WebSocket: ws.FakeSocket,
    fetch,
    clock,
    random: () => 0.5,
    storage,
    BroadcastChannel: over.BroadcastChannel || null,
    env: over.env || null,
    ...over.options,
  });
  return { client, clock, ws, fetch, storage };
}

let n = 0;
export function welcome(sock, extra = {}) {
  sock.open();
  sock.recv({
    op: 'welcome',
    session_id: extra.session_id || 's' + ++n,
    user_id: extra.user_id || 'alice',
    resume_token: extra.resume_token || 'rt-' + n,
    heartbeat_ms: extra.heartbeat_ms || 10000,
    server_time: extra.server_time ?? 0,
    resumed: !!extra.resumed,
  });
}
