// The presenced client: one session per tab over /v1/ws (PROTOCOL.md 1.1).
// No dependencies. Everything that touches the outside (clock, random, socket,
// fetch, storage, BroadcastChannel, window/document) can be injected.
import { View } from './view.js';
import { attachLifecycle } from './lifecycle.js';

const DEFAULTS = {
  baseDelayMs: 500, // backoff: first ceiling
  maxDelayMs: 30000, // backoff: largest ceiling
  leaveAfterMs: 3000, // pagehide: pending leave (a reload resumes before it)
  idleAfterMs: 30000, // no input this long: the page says idle
  activeThrottleMs: 5000, // at most one `active` per this while input goes on
  releaseGraceMs: 1000, // last release / unsubscribe waits this long (remounts)
  claimWaitMs: 150, // duplicated-tab check: how long to wait for the owner
  liveTimeoutMs: 5000, // on wake, an open socket that answers nothing this long is dead
  stableMs: 10000, // a session up this long resets the backoff (not a bare welcome)
  tokenTransport: 'hello', // 'hello' (1.1) or 'query' (?token=, v1 servers)
};

/** Full-jitter exponential backoff: uniform in [0, min(cap, base·2^attempt)). */
export function backoffDelay(attempt, baseMs, capMs, random = Math.random) {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** attempt));
}

// Visible members per state (what a room's `counts` hold).
function countMembers(members) {
  const c = {};
  for (const x of members) if (x.visible !== false && x.state) c[x.state] = (c[x.state] || 0) + 1;
  return c;
}

function sameCounts(a, b) {
  if (!a || !b) return false;
  for (const k in { ...a, ...b }) if ((a[k] || 0) !== (b[k] || 0)) return false;
  return true;
}

const realClock = {
  now: () => Date.now(),
  setTimeout: (f, ms) => setTimeout(f, ms),
  clearTimeout: (t) => clearTimeout(t),
};

const rid = () => Math.random().toString(36).slice(2, 10);

function defaultStorage() {
  try {
    return globalThis.sessionStorage || null;
  } catch {
    return null; // blocked storage (sandboxed iframe)
  }
}

export class PresenceClient {
  constructor(options = {}) {
    const g = globalThis;
    const o = (this.o = { ...DEFAULTS, ...options });
    this.base = String(o.url || g.location?.origin || '').replace(/\/$/, '');
    this.WS = o.WebSocket || g.WebSocket;
    this.fetchImpl = o.fetch || (g.fetch && g.fetch.bind(g));
    this.clock = o.clock || realClock;
    this.random = o.random || Math.random;
    this.storage = 'storage' in o ? o.storage : defaultStorage();
    this.Channel = 'BroadcastChannel' in o ? o.BroadcastChannel : g.BroadcastChannel;
    this.env = 'env' in o ? o.env : g.document ? { window: g, document: g.document, navigator: g.navigator } : null;
    this.key = 'presenced:' + this.base;
    this.refs = 0;
    this.users = new Map();
    this.rooms = new Map();
    this.joined = new Map(); // room id -> visible
    this.intents = new View(this, 'intents', '');
    this.connection = new View(this, 'connection', '');
    this.connection.value = { status: 'idle', attempt: 0 };
    this.ws = null;
    this.attempt = 0;
    this.notBefore = 0;
    this.offset = 0;
    this.hb = 10000;
    this.timers = {};
    this.stopped = true;
    this.hidden = false; // document hidden or frozen
    this.forced = false; // app forced background
    this.activity = 'active';
    this.inputSinceSignal = true;
    this.lastInput = this.clock.now();
    this.lastActive = -Infinity;
    this.sess = null;
    this.guestToken = null;
    this.checkedDup = false;
    this.listeners = new Set();
  }

  // ---- lifetime ------------------------------------------------------------

  /** Takes a reference; the first one starts the client. */
  acquire() {
    this.refs++;
    this.clear('release');
    // Taken again after its last release left (a render's client committed
    // late): it is the page's shared client again.
    if (this.shareKey && !registry.has(this.shareKey)) registry.set(this.shareKey, this);
    if (this.stopped) this.start();
    return this;
  }

  /** Drops a reference; the last one (after releaseGraceMs) leaves. */
  release() {
    if (this.refs > 0 && --this.refs === 0)
      this.later('release', this.o.releaseGraceMs, () => {
        if (this.refs === 0) {
          this.leave(this.o.leaveAfterMs);
          this.destroy();
          if (registry.get(this.shareKey) === this) registry.delete(this.shareKey);
        }
      });
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.started = true;
    this.load();
    if (this.env && !this.detach) this.detach = attachLifecycle(this, this.env);
    if (this.Channel && !this.chan) {
      try {
        this.chan = new this.Channel('presenced');
        this.chan.onmessage = (e) => this.onChannel(e.data);
      } catch {
        this.chan = null;
      }
    }
    if (this.env) {
      this.lastInput = this.clock.now();
      this.resetIdle();
    }
    this.connectNow();
  }

  /** Explicit leave: the session ends (after afterMs if given), nothing reconnects. */
  leave(afterMs = 0) {
    if (this.ws && this.status === 'open') this.send(afterMs ? { op: 'leave', after_ms: afterMs } : { op: 'leave' });
    else if (this.sess) this.beacon(afterMs);
    if (!afterMs) this.forget();
    this.shutdown();
  }

  /** Drops the socket without a leave (the session decays or is resumed later). */
  disconnect() {
    this.shutdown();
  }

  shutdown() {
    this.stopped = true;
    for (const k in this.timers) this.clear(k);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = ws.onmessage = ws.onopen = null;
      try {
        ws.close(1000);
      } catch {}
    }
    this.setStatus('closed');
  }

  /** Drops every listener of the page and the channel (for tests and teardown). */
  destroy() {
    this.shutdown();
    if (this.detach) this.detach();
    this.detach = null;
    if (this.chan) this.chan.close();
    this.chan = null;
  }

  // ---- stored session (sessionStorage) and duplicated tabs ------------------

  load() {
    try {
      const s = JSON.parse(this.storage?.getItem(this.key) || 'null');
      if (s) {
        this.stored = s;
        this.guestToken = s.tok || null;
      }
    } catch {}
  }

  save(used = true) {
    const s = this.sess;
    const v = { sid: s?.sid, rt: s?.rt, uid: s?.uid, tok: this.guestToken, used };
    this.stored = s ? v : null;
    try {
      this.storage?.setItem(this.key, JSON.stringify(v));
    } catch {}
  }

  forget() {
    this.sess = null;
    this.save(false);
  }

  onChannel(m) {
    // Another tab found our session in its copied sessionStorage: it is a
    // duplicate of this tab, and this tab keeps the session.
    if (m && m.q === 'claim' && this.sess && m.sid === this.sess.sid && !this.stopped)
      this.chan.postMessage({ a: 'mine', sid: m.sid });
  }

  // Resolves to the stored session this tab may resume, or null.
  async claim() {
    const s = this.stored;
    if (this.checkedDup || !s || !s.sid) return this.sess;
    this.checkedDup = true;
    const mine = { sid: s.sid, rt: s.rt, uid: s.uid };
    // Marked in use and another tab still answers for it: this tab is a copy.
    if (!s.used || !this.chan) return mine;
    const taken = await new Promise((done) => {
      const chan = this.chan;
      const prev = chan.onmessage;
      const finish = (v) => {
        chan.onmessage = prev;
        this.clear('claim');
        done(v);
      };
      chan.onmessage = (e) => (e.data && e.data.a === 'mine' && e.data.sid === s.sid ? finish(true) : prev && prev(e));
      this.later('claim', this.o.claimWaitMs, () => finish(false));
      chan.postMessage({ q: 'claim', sid: s.sid });
    });
    this.duplicate = taken;
    return taken ? null : mine;
  }

  // ---- connection -------------------------------------------------------------

  get status() {
    return this.connection.value.status;
  }

  setStatus(status, extra) {
    const v = this.connection.value;
    if (v.status !== status || extra) this.connection.set({ ...v, status, attempt: this.attempt, ...extra });
  }

  /** Connects now if not connected (online, visible, pageshow, resume); Retry-After still holds. */
  connectNow() {
    if (this.stopped || this.ws || this.connecting) return;
    this.clear('retry');
    const wait = this.notBefore - this.clock.now();
    if (wait > 0) return this.later('retry', wait, () => this.connectNow());
    this.open().catch((e) => {
      this.connecting = false;
      this.emit('error', e);
      this.retry();
    });
  }

  async token() {
    const t = this.o.token;
    if (t) return typeof t === 'function' ? t() : t;
    if (!this.guestToken) {
      const g = await this.http('POST', '/v1/guests', {}, true);
      this.guestToken = g.token;
      if (this.sess) this.save();
    }
    return this.guestToken;
  }

  async open() {
    this.connecting = true;
    this.setStatus(this.attempt ? 'reconnecting' : 'connecting');
    if (!this.sess) this.sess = await this.claim();
    const token = await this.token();
    if (this.stopped) return (this.connecting = false);
    let url = this.base.replace(/^http/, 'ws') + '/v1/ws';
    const query = this.o.tokenTransport === 'query';
    if (query) url += '?token=' + encodeURIComponent(token);
    const ws = (this.ws = new this.WS(url));
    this.connecting = false;
    this.welcomed = false;
    ws.onopen = () => this.hello(query ? null : token);
    ws.onmessage = (e) => {
      this.clear('live');
      let m;
      try {
        m = JSON.parse(e.data);
      } catch {
        return;
      }
      this.onFrame(m);
    };
    ws.onerror = () => {};
    ws.onclose = (e) => this.onClose(e);
  }

  hello(token) {
    const m = { op: 'hello', signal: this.pageSignal() };
    if (token) m.token = token;
    if (this.o.device) m.device = this.o.device;
    if (this.sess) {
      m.session_id = this.sess.sid;
      m.resume_token = this.sess.rt;
    }
    this.helloToken = token;
    this.helloSignal = m.signal;
    this.helloAt = this.clock.now();
    this.send(m);
  }

  send(m) {
    if (!this.ws) return false;
    try {
      this.ws.send(JSON.stringify(m));
      return true;
    } catch {
      return false;
    }
  }

  onClose(e) {
    this.ws = null;
    this.clear('hb');
    this.clear('live');
    this.clear('stable');
    const failed = !this.welcomed;
    this.welcomed = false;
    if (this.stopped) return;
    this.setStatus('reconnecting');
    // Another socket resumed this tab's session (`error session_taken_over`,
    // then close 4409): a duplicated tab that resumed it while this one was
    // frozen and could not answer the claim, or a newer socket of the same
    // session. Resuming it would take it back, and two tabs would take it
    // from each other for ever: this tab forgets it and opens a session of
    // its own at once (no backoff: the node is fine), keeping what it watches
    // and its rooms (joined again on the new session's welcome).
    if (e && e.code === 4409) {
      this.forget();
      return this.connectNow();
    }
    // A refused upgrade looks like any failure in a browser: the node's
    // /readyz tells a Retry-After if it is recovering or overloaded.
    if (failed && this.o.probe !== false)
      this.http('GET', '/readyz', undefined, true).then(() => this.retry(), () => this.retry());
    else this.retry(e && e.code === 1013 ? 2 : 0);
  }

  retry(extra = 0) {
    if (this.stopped || this.ws || this.connecting || this.timers.retry) return;
    this.attempt += extra;
    const jitter = backoffDelay(this.attempt++, this.o.baseDelayMs, this.o.maxDelayMs, this.random);
    const delay = Math.max(jitter, this.notBefore - this.clock.now());
    this.lastDelay = delay;
    this.setStatus('reconnecting', { retryInMs: delay });
    this.later('retry', delay, () => this.connectNow());
  }

  noteRetryAfter(header) {
    if (header == null) return;
    let ms = Number(header) * 1000;
    if (isNaN(ms)) ms = Date.parse(header) - this.clock.now();
    if (ms > 0) this.notBefore = Math.max(this.notBefore, this.clock.now() + ms);
  }

  // ---- frames -------------------------------------------------------------------

  onFrame(m) {
    switch (m.op) {
      case 'welcome':
        return this.onWelcome(m);
      case 'ack':
        this.state = m.state;
        if (m.heartbeat_ms) this.hb = m.heartbeat_ms;
        this.setStatus('open', { state: m.state, heartbeat_ms: this.hb });
        return this.armHeartbeat();
      case 'subscribed':
        for (const u of m.users || []) this.userSnapshot(u);
        for (const r of m.rooms || []) this.roomSnapshot(r);
        return;
      case 'presence':
        return this.onPresence(m);
      case 'room':
      case 'room_delta':
        return this.onRoom(m);
      case 'intent':
        return this.onIntent(m.intent);
      case 'error':
        return this.onError(m);
    }
  }

  onWelcome(m) {
    const now = this.clock.now();
    this.welcomed = true;
    // A node that welcomes and then drops every socket (crash loop, overload)
    // must not be hammered at the first backoff step: the backoff resets only
    // once the session stayed up for stableMs.
    this.later('stable', this.o.stableMs, () => (this.attempt = 0));
    this.notBefore = 0;
    this.offset = m.server_time - (now + (this.helloAt ?? now)) / 2;
    this.hb = m.heartbeat_ms || this.hb;
    this.sess = { sid: m.session_id, rt: m.resume_token, uid: m.user_id };
    this.userId = m.user_id;
    this.save(true);
    this.lastSignal = now;
    this.inputSinceSignal = false;
    this.sent = this.helloSignal;
    if (this.sent === 'active') this.lastActive = now;
    this.setStatus('open', { session_id: m.session_id, user_id: m.user_id, resumed: !!m.resumed, heartbeat_ms: this.hb });
    this.armHeartbeat();
    const users = [...this.users.values()].filter((v) => v.subs.size).map((v) => v.id);
    const rooms = [...this.rooms.values()].filter((v) => v.subs.size || this.joined.has(v.id)).map((v) => v.id);
    const toJoin = m.resumed ? [] : [...this.joined.keys()];
    this.subscribeAll(users, rooms.filter((r) => !toJoin.includes(r)));
    for (const r of toJoin) this.send({ op: 'join', room: r, visible: this.joined.get(r) });
    if (this.intents.subs.size) this.loadIntents();
    this.emit('welcome', m);
  }

  onError(m) {
    this.emit('error', m);
    const code = m.code;
    if (code === 'session_taken_over' && this.ws) {
      const ws = this.ws;
      ws.onclose = ws.onmessage = ws.onopen = null;
      try {
        ws.close(1000);
      } catch {}
      return this.onClose({ code: 4409 });
    }
    const lost = code === 'session_not_found';
    if (this.ws && (this.welcomed ? lost : (lost || code === 'forbidden') && this.sess)) {
      // The stored session is gone (or not ours), or this socket's session
      // expired: open a new one on the same socket.
      this.sess = null;
      this.welcomed = false;
      this.clear('hb');
      this.forget();
      return this.hello(this.helloToken);
    }
    if (code === 'unauthorized' && this.ws) {
      if (!this.o.token) this.guestToken = null; // expired guest token: fetch a new one
      this.sess = null;
      this.ws.close(4000);
      return;
    }
    if (code === 'unavailable' && m.topics) {
      // Topics of every such error within the second are retried together
      // (those still watched then).
      const q = (this.resub ||= { users: new Set(), rooms: new Set() });
      for (const t of m.topics) t.user ? q.users.add(t.user) : q.rooms.add(t.room);
      if (!this.timers.resub)
        this.later('resub', 1000, () => {
          this.resub = null;
          if (!this.welcomed) return; // the next welcome subscribes everything
          const users = [...q.users].filter((u) => this.users.get(u)?.subs.size);
          const rooms = [...q.rooms].filter((r) => this.rooms.get(r)?.subs.size || this.joined.has(r));
          this.subscribeAll(users, rooms);
        });
    }
  }

  // ---- signals -------------------------------------------------------------------

  /** What the page is now: background (hidden, frozen, forced), active (input since the last signal) or idle. */
  pageSignal() {
    if (this.hidden || this.forced) return 'background';
    return this.inputSinceSignal ? 'active' : 'idle';
  }

  signal(sig) {
    const now = this.clock.now();
    if (!this.welcomed) {
      // Not connected: the next hello carries the page's signal.
      if (sig === 'active') this.inputSinceSignal = true;
      return;
    }
    if (sig === 'active') {
      this.lastActive = now;
      this.clear('trail');
    }
    this.inputSinceSignal = false;
    this.lastSignal = now;
    this.sent = sig;
    this.send({ op: 'signal', signal: sig });
    this.armHeartbeat();
  }

  armHeartbeat() {
    if (!this.welcomed) return;
    const hb = this.hb;
    const due = this.lastSignal + hb - Math.min(2000, hb * 0.2);
    this.later('hb', Math.max(0, due - this.clock.now()), () => this.signal(this.pageSignal()));
  }

  /** User input (throttled): active now, at most one `active` per activeThrottleMs, trailing one after. */
  input() {
    const now = this.clock.now();
    this.lastInput = now;
    this.resetIdle();
    if (this.hidden || this.forced) return;
    const was = this.activity;
    this.activity = 'active';
    if (was !== 'active' || this.sent !== 'active' || now - this.lastActive >= this.o.activeThrottleMs) return this.signal('active');
    this.inputSinceSignal = true;
    if (!this.timers.trail)
      this.later('trail', this.lastActive + this.o.activeThrottleMs - now, () => this.inputSinceSignal && this.signal('active'));
  }

  // The idle timer is armed once and re-arms itself for what is left, so a
  // stream of pointermove events does not clear and set a timer each.
  resetIdle() {
    if (this.timers.idle) return;
    const check = () => {
      const left = this.lastInput + this.o.idleAfterMs - this.clock.now();
      if (left > 0) return this.later('idle', left, check);
      if (this.hidden || this.forced) return;
      this.activity = 'idle';
      this.signal('idle');
    };
    this.later('idle', Math.max(0, this.lastInput + this.o.idleAfterMs - this.clock.now()), check);
  }

  /** The page is hidden / visible (visibilitychange, freeze, resume). */
  setHidden(hidden) {
    if (this.hidden === hidden) return;
    this.hidden = hidden;
    this.lifecycleChange();
  }

  /** The application forces background (true) or gives the page back its own mapping (false). */
  background(on = true) {
    this.forced = !!on;
    this.lifecycleChange();
  }

  lifecycleChange() {
    if (this.hidden || this.forced) {
      this.activity = 'background';
      this.signal('background');
    } else {
      // Coming back to a tab is an interaction.
      this.activity = 'active';
      this.lastInput = this.clock.now();
      this.resetIdle();
      this.signal('active');
      this.wake();
    }
  }

  /**
   * Reconnects at once if the socket is down (online, visible, pageshow,
   * resume). A socket that looks open may be dead after a sleep or a network
   * change (no close ever reached the page, and TCP may take many minutes to
   * notice): it is asked for an answer (an empty subscribe, answered at once)
   * and replaced, resuming the session, if none comes within liveTimeoutMs.
   */
  wake() {
    if (this.stopped) return;
    if (this.ws) return this.probeLive();
    this.clear('retry');
    this.connectNow();
  }

  probeLive() {
    if (!this.ws || !this.welcomed || this.timers.live) return;
    this.send({ op: 'subscribe' });
    this.later('live', this.o.liveTimeoutMs, () => {
      const ws = this.ws;
      if (!ws) return;
      ws.onclose = ws.onmessage = ws.onopen = null;
      try {
        ws.close(4001);
      } catch {}
      this.emit('error', { code: 'dead_socket', message: 'no answer within ' + this.o.liveTimeoutMs + ' ms: reconnecting' });
      this.onClose({ code: 4001 });
    });
  }

  pagehide(persisted) {
    // A pending leave: a reload resumes before it fires, a closed tab is gone soon.
    if (this.sess) this.beacon(this.o.leaveAfterMs);
    this.save(false);
    this.shutdown();
    this.suspended = true;
  }

  pageshow(persisted) {
    if (!this.suspended) return;
    // Restored from the back/forward cache: resume the stored session.
    this.suspended = false;
    this.checkedDup = true;
    this.start();
  }

  beacon(afterMs) {
    const s = this.sess;
    if (!s) return;
    const url = this.base + '/v1/sessions/' + encodeURIComponent(s.sid) + '/leave';
    const body = JSON.stringify({ resume_token: s.rt, after_ms: afterMs });
    const nav = this.env?.navigator;
    try {
      if (nav && nav.sendBeacon && nav.sendBeacon(url, body)) return;
    } catch {}
    try {
      this.fetchImpl(url, { method: 'POST', body, keepalive: true, headers: { 'Content-Type': 'text/plain' } }).catch(() => {});
    } catch {}
  }

  // ---- views -----------------------------------------------------------------------

  /** Live view of a user: {user_id, state, seq, since, last_active_at, confidence, sessions, ...}. */
  user(id) {
    return this.view(this.users, 'user', id);
  }

  /** Live view of a room: {room_id, members, counts, readiness, phase, ...}. */
  room(id) {
    return this.view(this.rooms, 'room', id);
  }

  view(map, kind, id) {
    let v = map.get(id);
    if (!v) map.set(id, (v = new View(this, kind, id)));
    return v;
  }

  watch(v) {
    this.clear('unwatch:' + v.kind + v.id);
    if (v.kind === 'intents') return this.welcomed && this.loadIntents();
    if (v.kind === 'connection' || !this.welcomed) return;
    if (v.kind === 'room' && this.joined.has(v.id)) return;
    this.send({ op: 'subscribe', [v.kind + 's']: [v.id] });
  }

  unwatch(v) {
    if (v.kind === 'intents' || v.kind === 'connection') return;
    this.later('unwatch:' + v.kind + v.id, this.o.releaseGraceMs, () => {
      if (v.subs.size || (v.kind === 'room' && this.joined.has(v.id))) return;
      this.send({ op: 'unsubscribe', [v.kind + 's']: [v.id] });
      v.value = null;
    });
  }

  // Users in one frame (their seq orders a snapshot against events), each room
  // in its own: the server answers a frame once every snapshot in it is in,
  // so a room's events may overtake its snapshot in a shared answer, and a
  // room's snapshot (no seq) would then undo them.
  subscribeAll(users, rooms) {
    if (users.length) this.send({ op: 'subscribe', users });
    for (const r of rooms) this.send({ op: 'subscribe', rooms: [r] });
  }

  refresh(v) {
    // A fresh snapshot: subscribing again is idempotent and answers one. One
    // asked for and not yet answered covers later gaps (a burst of them).
    if (!this.welcomed || (v.asked && this.clock.now() - v.asked < 2000)) return;
    v.asked = this.clock.now();
    this.send({ op: 'subscribe', [v.kind + 's']: [v.id] });
  }

  userSnapshot(u) {
    const v = this.user(u.user_id);
    const cur = v.value;
    v.asked = 0;
    let next = { ...u, at: this.serverNow() };
    // An event that overtook the snapshot is newer: keep its fields.
    if (cur && cur.seq > u.seq)
      next = { ...next, state: cur.state, seq: cur.seq, since: cur.since, last_active_at: cur.last_active_at };
    v.set(next, { type: 'snapshot' });
  }

  onPresence(m) {
    const v = this.user(m.user_id);
    const cur = v.value;
    if (cur && m.seq <= cur.seq) return; // old news
    const gap = cur ? m.seq > cur.seq + 1 : false;
    const next = { ...(cur || { user_id: m.user_id }), state: m.state, prev: m.prev, seq: m.seq, since: m.since };
    if (m.last_active_at != null) next.last_active_at = m.last_active_at;
    v.set(next, { type: 'presence', state: m.state, prev: m.prev, gap });
    if (gap) {
      this.gaps = (this.gaps || 0) + 1;
      this.refresh(v);
    }
  }

  roomSnapshot(r) {
    const v = this.room(r.room_id);
    v.asked = 0;
    const next = { ...r, members: r.members || [] };
    // Whether this room's counts can be checked against its member list: the
    // whole list is here and the snapshot agrees with itself.
    v.checkable = !r.next_after && sameCounts(countMembers(next.members), r.counts);
    v.set(next, { type: 'snapshot' });
  }

  onRoom(m) {
    const v = this.room(m.room_id);
    const cur = v.value || { room_id: m.room_id, members: [] };
    // Rooms with a seq (a later server): old news is dropped, a jump re-reads.
    if (m.seq != null && cur.seq != null && m.seq <= cur.seq) return;
    let gap = m.seq != null && cur.seq != null && m.seq > cur.seq + 1;
    const members = cur.members.slice();
    let count = cur.member_count;
    let joined = -1;
    const put = (user_id, state) => {
      const i = members.findIndex((x) => x.user_id === user_id);
      if (state === 'offline' || state == null) {
        if (i >= 0) members.splice(i, 1), count--;
      } else if (i >= 0) members[i] = { ...members[i], state };
      else joined = members.push({ user_id, state, visible: true }) - 1, count++;
    };
    if (m.op === 'room_delta') for (const c of m.changed || []) put(c.user_id, c.state);
    else if (m.event === 'leave') put(m.user_id, null);
    else if (m.user_id && (m.event === 'join' || m.event === 'member')) put(m.user_id, m.state);
    if (m.op === 'room' && v.checkable && !sameCounts(countMembers(members), m.counts)) {
      // A member the events do not say is invisible (an observer's join) ...
      if (joined >= 0) members[joined] = { ...members[joined], visible: false };
      // ... or an event that never came: the server may send only the latest
      // of a room's frames while a socket is behind (PROTOCOL 1.1, coalesced
      // bursts), and a room's events carry no seq: a join, leave or member
      // change replaced by the next frame shows only in the counts.
      if (joined < 0 || !sameCounts(countMembers(members), m.counts)) gap = true;
    }
    const next = { ...cur, members, counts: m.counts, readiness: m.readiness, phase: m.phase };
    if (count != null && !isNaN(count)) next.member_count = Math.max(count, members.length);
    if (m.seq != null) next.seq = m.seq;
    if (m.event === 'threshold') next.threshold_holding = !!m.holding;
    v.set(next, { type: m.op === 'room' ? m.event : 'delta', user_id: m.user_id, state: m.state, holding: m.holding, gap });
    if (gap || m.truncated) {
      if (gap) this.gaps = (this.gaps || 0) + 1;
      this.refresh(v); // the member list needs a snapshot
    }
  }

  // ---- rooms, intents ---------------------------------------------------------------

  /** Joins a room with this tab's session (kept across resumes and new sessions). */
  join(room, { visible } = {}) {
    this.joined.set(room, visible);
    const m = { op: 'join', room };
    if (visible !== undefined) m.visible = visible;
    if (this.welcomed) this.send(m);
    return this.room(room);
  }

  leaveRoom(room) {
    this.joined.delete(room);
    if (this.welcomed) this.send({ op: 'leave_room', room });
  }

  async loadIntents() {
    if (!this.userId) return;
    try {
      const r = await this.http('GET', '/v1/users/' + encodeURIComponent(this.userId) + '/intents');
      const byId = (xs) => new Map(xs.map((x) => [x.intent_id, x]));
      const cur = this.intents.value || { incoming: [], outgoing: [] };
      // Events that arrived meanwhile are newer than the list.
      const merge = (list, mine) => {
        const m = byId(list);
        for (const x of mine) m.set(x.intent_id, x);
        return [...m.values()];
      };
      this.intents.set({ incoming: merge(r.incoming, cur.incoming), outgoing: merge(r.outgoing, cur.outgoing) }, { type: 'snapshot' });
    } catch (e) {
      this.emit('error', e);
    }
  }

  onIntent(x) {
    if (!x) return;
    const cur = this.intents.value || { incoming: [], outgoing: [] };
    const dir = x.from_user === this.userId ? 'outgoing' : 'incoming';
    const list = cur[dir].slice();
    const i = list.findIndex((y) => y.intent_id === x.intent_id);
    const prev = i >= 0 ? list[i].status : null;
    if (i >= 0) list[i] = x;
    else list.push(x);
    this.intents.set({ ...cur, [dir]: list }, { type: 'intent', direction: dir, intent: x, prev });
    this.emit('intent', x);
  }

  /** Creates an intent: {to_user} or {to_room}, kind?, ttl_ms?, note?. Resolves to the intent view. */
  async intend(spec) {
    const x = await this.http('POST', '/v1/intents', spec);
    this.onIntent(x);
    return x;
  }

  async answer(intentId, how) {
    const x = await this.http('POST', '/v1/intents/' + encodeURIComponent(intentId) + '/' + how, {});
    this.onIntent(x);
    return x;
  }

  accept(id) {
    return this.answer(id, 'accept');
  }

  decline(id) {
    return this.answer(id, 'decline');
  }

  cancel(id) {
    return this.answer(id, 'cancel');
  }

  /** A room's readiness samples: {samples: [{t, counts, readiness, phase}]}. */
  timeline(room, since) {
    return this.http('GET', '/v1/rooms/' + encodeURIComponent(room) + '/timeline' + (since ? '?since=' + since : ''));
  }

  // ---- HTTP ------------------------------------------------------------------------------

  async http(method, path, body, anonymous) {
    const headers = { ...this.o.headers };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (!anonymous) headers.Authorization = 'Bearer ' + (await this.token());
    const res = await this.fetchImpl(this.base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status === 429 || res.status === 503) this.noteRetryAfter(res.headers.get('Retry-After'));
    const text = res.status === 204 ? '' : await res.text();
    const data = text ? JSON.parse(text) : null;
    if (!res.ok) {
      const err = new Error((data && data.error && data.error.message) || 'HTTP ' + res.status);
      err.status = res.status;
      err.code = data && data.error && data.error.code;
      throw err;
    }
    return data;
  }

  // ---- time ------------------------------------------------------------------------------

  /** Now on the server's clock (ms since the epoch). */
  serverNow() {
    return this.clock.now() + this.offset;
  }

  /** Milliseconds since server time t, by the server's clock (null for null). */
  ago(t) {
    return t == null ? null : Math.max(0, this.serverNow() - t);
  }

  // ---- plumbing --------------------------------------------------------------------------

  later(name, ms, f) {
    this.clear(name);
    this.timers[name] = this.clock.setTimeout(() => {
      delete this.timers[name];
      f();
    }, ms);
  }

  clear(name) {
    if (this.timers[name] !== undefined) this.clock.clearTimeout(this.timers[name]);
    delete this.timers[name];
  }

  /** Events: 'welcome', 'intent', 'error'. Returns an unsubscribe function. */
  on(type, f) {
    const l = { type, f };
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  emit(type, x) {
    for (const l of [...this.listeners]) if (l.type === type) l.f(x);
  }
}

const registry = new Map();

/**
 * The page's shared client for this server (and token) without taking a
 * reference: nothing starts until someone acquire()s it (connect() does).
 */
export function shared(options = {}) {
  const base = String(options.url || globalThis.location?.origin || '');
  const key = options.shareKey || base + '|' + (typeof options.token === 'string' ? options.token : '');
  let c = registry.get(key);
  // A client that was started and has stopped with nobody holding it (its
  // last release left, or the application left) is not reused.
  if (!c || (c.stopped && c.refs === 0 && c.started)) {
    c = new PresenceClient(options);
    c.shareKey = key;
    registry.set(key, c);
  }
  return c;
}

/**
 * The page's shared client for this server (and token): reference-counted, so
 * everything in a page (and a framework mounting twice) uses one socket. Call
 * release() once per connect().
 */
export function connect(options = {}) {
  return shared(options).acquire();
}

export { rid as _rid };
