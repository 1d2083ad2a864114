// Integration tests against a real presenced (PRESENCED=/path/to/presenced).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { PresenceClient } from '../../src/index.js';
import { startServer, token, until, settle, sleep, STEADY } from '../helpers/server.js';

let srv;
const clients = [];
before(async () => {
  // STEADY: a member stays active for the whole test (no input in Node).
  srv = await startServer(STEADY);
  console.log('# server features', JSON.stringify(srv.features));
});
after(async () => {
  for (const c of clients) c.destroy();
  await srv?.stop();
});

const make = (user, over = {}) => {
  const c = new PresenceClient({
    url: srv.url,
    token: user ? token(user) : undefined,
    WebSocket,
    storage: null,
    env: null,
    // A v1 server takes the token only at the upgrade.
    tokenTransport: srv.features.helloToken ? 'hello' : 'query',
    baseDelayMs: 100,
    ...over,
  });
  clients.push(c);
  c.start();
  return c;
};
const opened = (c) => until(() => c.status === 'open' && c, 'welcome');

test('two users see each other; background → away; leave → offline', async () => {
  const alice = await opened(make('alice'));
  const bob = await opened(make('bob'));
  const seen = [];
  alice.user('bob').subscribe((v) => v && seen.push(v.state));
  await settle(alice.user('bob'), (v) => v?.state === 'active', 'bob active');
  assert.equal(alice.user('bob').get().sessions.length, 1);
  const ago = alice.ago(alice.user('bob').get().last_active_at);
  assert.ok(ago >= 0 && ago < 5000, 'active ' + ago + ' ms ago by the server clock');
  bob.background(true);
  await settle(alice.user('bob'), (v) => v?.state === 'away', 'bob away');
  bob.leave();
  await settle(alice.user('bob'), (v) => v?.state === 'offline', 'bob offline');
  assert.deepEqual(seen.filter((s, i) => s !== seen[i - 1]), ['active', 'away', 'offline']);
});

test('a dropped socket resumes the same session without a flap', async () => {
  const carol = await opened(make('carol'));
  const dave = await opened(make('dave'));
  const states = [];
  dave.user('carol').subscribe((v) => v && states.push(v.state));
  await settle(dave.user('carol'), (v) => v?.state === 'active', 'carol active');
  const sid = carol.connection.get().session_id;
  carol.ws.terminate(); // the network goes
  await until(() => carol.status === 'open' && carol.connection.get().resumed, 'resume');
  assert.equal(carol.connection.get().session_id, sid);
  await sleep(500);
  assert.ok(!states.includes('offline'), 'no flap: ' + states);
});

test('wake: the node answers the liveness probe; a socket that answers nothing is replaced, the session resumed', async () => {
  const c = await opened(make('nina', { liveTimeoutMs: 3000 }));
  const errors = [];
  c.on('error', (e) => errors.push(e.code));
  c.wake(); // e.g. the page became visible: an open socket is asked for an answer
  assert.ok(c.timers.live, 'probe sent');
  await until(() => !c.timers.live, 'the probe answered');
  const sid = c.connection.get().session_id;
  const old = c.ws;
  old._socket.pause(); // as after a sleep: the socket looks open, nothing comes back
  c.wake();
  await until(() => c.status === 'open' && c.ws !== old && c.connection.get().resumed, 'a new socket, resumed', 10000);
  assert.equal(c.connection.get().session_id, sid);
  assert.deepEqual(errors, ['dead_socket']);
  old.terminate();
});

test('a room: members, counts, readiness and phase live; timeline', async () => {
  const e = await opened(make('erin'));
  const f = await opened(make('frank'));
  e.join('r1', { visible: true });
  f.join('r1', { visible: true });
  const r = e.room('r1');
  r.subscribe(() => {});
  await settle(r, (v) => v?.members.filter((m) => m.state === 'active').length === 2, 'two active members');
  await settle(r, (v) => v.phase === 'ready', 'ready');
  // A sample every timeline_interval_ms (500): one shows the ready room.
  await until(async () => (await e.timeline('r1')).samples.some((s) => s.phase === 'ready'), 'a ready sample');
  f.leaveRoom('r1');
  await settle(r, (v) => v.members.length === 1, 'frank left');
});

test('a room event lost while the socket is behind (coalesced) is recovered by a snapshot', async () => {
  // The server keeps only the latest unsent frame of a room for a socket that
  // is behind (PROTOCOL 1.1): bob's `join` is replaced by the `phase` after it.
  const a = await opened(make('lena'));
  a.join('r-behind', { visible: true });
  const r = a.room('r-behind');
  r.subscribe(() => {});
  await settle(r, (v) => v?.members.length === 1, 'lena in the room');
  a.ws._socket.pause(); // lena's page is busy: the node's writes to her back up
  const filler = 'u'.repeat(40);
  for (let k = 0; k < 8; k++) a.send({ op: 'subscribe', users: Array.from({ length: 500 }, (_, i) => `${filler}-${k}-${i}`) });
  await sleep(2000);
  const b = await opened(make('mike'));
  b.join('r-behind', { visible: true });
  await settle(b.room('r-behind'), (v) => v?.members.length === 2, 'mike sees both');
  await sleep(500);
  a.ws._socket.resume();
  await settle(r, (v) => v?.members.some((m) => m.user_id === 'mike'), 'lena sees mike');
  a.destroy();
});

test('an intent waits while the target is away and is delivered when it comes back', async () => {
  const g = await opened(make('gina'));
  const h = await opened(make('hank'));
  h.background(true);
  await until(async () => (await g.http('GET', '/v1/users/hank/presence')).state === 'away', 'hank away');
  g.intents.subscribe(() => {});
  h.intents.subscribe(() => {});
  const x = await g.intend({ to_user: 'hank', kind: 'call' });
  assert.equal(x.status, 'pending');
  await sleep(500);
  assert.equal(g.intents.get().outgoing.find((y) => y.intent_id === x.intent_id).status, 'pending');
  h.background(false);
  await until(() => h.intents.get()?.incoming.find((y) => y.intent_id === x.intent_id)?.status === 'delivered', 'delivered to hank');
  await until(() => g.intents.get().outgoing.find((y) => y.intent_id === x.intent_id)?.status === 'delivered', 'sender told');
  await h.accept(x.intent_id);
  await until(() => g.intents.get().outgoing.find((y) => y.intent_id === x.intent_id)?.status === 'accepted', 'accepted');
});

test('guests: a guest token from POST /v1/guests, rooms only', async () => {
  const g = await opened(make(null));
  assert.match(g.userId, /^guest:/);
  g.join('lobby', { visible: true });
  await settle(g.room('lobby'), (v) => v?.members.some((m) => m.user_id === g.userId), 'guest visible in the room');
});

// Protocol 1.1 (waits for the gateway's 1.1 additions).
test('1.1: hello {token} without a token in the URL', { skip: !process.env.PRESENCED ? 'no server' : false }, async (t) => {
  if (!srv.features.helloToken) return t.skip('waits for protocol 1.1 (hello {token}) in the gateway');
  const c = await opened(make('ivan', { tokenTransport: 'hello' }));
  assert.ok(!c.ws.url.includes('token'));
});

test('1.1: pagehide leave with after_ms: a reload resumes, a closed tab is gone in seconds', async (t) => {
  if (!srv.features.pagehideLeave) return t.skip('waits for protocol 1.1 (POST /v1/sessions/{sid}/leave) in the gateway');
  const beacons = [];
  const nav = { sendBeacon: (url, body) => (beacons.push(fetch(url, { method: 'POST', body, keepalive: true })), true) };
  const page = () => ({ window: new EventTarget(), document: Object.assign(new EventTarget(), { visibilityState: 'visible' }), navigator: nav });
  const watcher = await opened(make('judy'));
  const states = [];
  watcher.user('kate').subscribe((v) => v && states.push(v.state));
  const storage = new Map();
  const st = { getItem: (k) => storage.get(k) ?? null, setItem: (k, v) => storage.set(k, v) };
  const p1 = page();
  const k1 = await opened(make('kate', { env: p1, storage: st, leaveAfterMs: 2000 }));
  await settle(watcher.user('kate'), (v) => v?.state === 'active', 'kate active');
  const sid = k1.connection.get().session_id;
  // Reload: pagehide, then a new page with the same sessionStorage.
  p1.window.dispatchEvent(new Event('pagehide'));
  await Promise.all(beacons);
  const p2 = page();
  const k2 = await opened(make('kate', { env: p2, storage: st, leaveAfterMs: 2000 }));
  assert.equal(k2.connection.get().session_id, sid);
  assert.equal(k2.connection.get().resumed, true);
  await sleep(2500); // past after_ms: the resume cancelled the pending leave
  assert.equal(watcher.user('kate').get().state, 'active', 'no flap on reload: ' + states);
  assert.ok(!states.slice(states.indexOf('active')).includes('offline'), 'no flap on reload: ' + states);
  // Close: pagehide and nothing after it.
  p2.window.dispatchEvent(new Event('pagehide'));
  await Promise.all(beacons);
  await settle(watcher.user('kate'), (v) => v?.state === 'offline', 'kate gone', 8000);
});

// A duplicated tab copies sessionStorage; when the original is frozen (a
// background tab on a phone) it cannot answer the claim, and the copy resumes
// the original's session after claimWaitMs. The node keeps one socket per
// session: the original is told (session_taken_over, 4409) and opens a session
// of its own, so the two tabs end up as two sessions, and one tab's leave does
// not take the other away.
test('1.1: a frozen tab whose session a duplicate resumed opens its own; one tab leaving keeps the other', async (t) => {
  if (!srv.features.pagehideLeave) return t.skip('waits for protocol 1.1 in the gateway');
  // Frozen: the original's page runs no script, so nobody answers a claim.
  class FrozenChannel {
    postMessage() {}
    close() {}
  }
  const storageOf = (m) => ({ getItem: (k) => m.get(k) ?? null, setItem: (k, v) => m.set(k, v), m });
  const sa = storageOf(new Map());
  const a = await opened(make('quinn', { storage: sa, BroadcastChannel: FrozenChannel }));
  const sidA = a.connection.get().session_id;
  const errors = [];
  a.on('error', (e) => errors.push(e.code));
  a.user('rosa').subscribe(() => {});
  // The duplicate gets a copy of sessionStorage (the entry in use).
  const sb = storageOf(new Map(sa.m));
  const b = make('quinn', { storage: sb, BroadcastChannel: FrozenChannel });
  await until(() => b.status === 'open' && b.connection.get().resumed, 'the copy resumes after the claim wait');
  assert.equal(b.connection.get().session_id, sidA);
  // The original was taken over and opened a session of its own at once.
  await until(() => a.status === 'open' && a.connection.get().session_id !== sidA, 'the original opens its own session');
  const sidA2 = a.connection.get().session_id;
  assert.deepEqual(errors, ['session_taken_over']);
  assert.equal(a.connection.get().resumed, false);
  assert.equal(JSON.parse(sa.m.get(a.key)).sid, sidA2, 'the original stores its new session');
  assert.equal(JSON.parse(sb.m.get(b.key)).sid, sidA, 'the copy keeps the resumed one');
  // What the original watches came along (subscribed again on the new session).
  const rosa = await opened(make('rosa'));
  await settle(a.user('rosa'), (v) => v?.state === 'active', 'the original still watches rosa');
  const presence = () => rosa.http('GET', '/v1/users/quinn/presence');
  await until(async () => (await presence()).sessions.length === 2, 'both tabs counted');
  const ids = (await presence()).sessions.map((x) => x.session_id).sort();
  assert.deepEqual(ids, [sidA, sidA2].sort());
  // One tab leaves: the other tab's session lives on, the user stays present.
  b.leave();
  await until(async () => (await presence()).sessions.length === 1, 'the leaving tab gone');
  const p = await presence();
  assert.equal(p.sessions[0].session_id, sidA2);
  // Present (idle: the new session opened with the page's signal, and Node
  // feeds no input).
  assert.ok(['active', 'idle'].includes(p.state), 'quinn is ' + p.state);
  await sleep(300);
  assert.equal(a.status, 'open', 'the other tab is still connected');
  assert.deepEqual(errors, ['session_taken_over'], 'no ping-pong between the tabs');
  a.leave();
  await until(async () => (await presence()).state === 'offline', 'both gone');
});

// The node's side of the test above, frame by frame: room frames are deltas
// without a seq, so keeping only the latest one of a room (as for a user's
// presence, whose frames are whole states with a seq) dropped the `join` of a
// member whose `phase` followed it; a member change is never replaced.
test('node: a room `join` is not lost while the socket is behind', async () => {
  const wsUrl = srv.url.replace('http', 'ws') + '/v1/ws';
  const open = (user) => {
    const ws = new WebSocket(wsUrl);
    ws.frames = [];
    ws.on('message', (d) => ws.frames.push(JSON.parse(d)));
    ws.once('open', () => ws.send(JSON.stringify({ op: 'hello', token: token(user), signal: 'active' })));
    return ws;
  };
  const frame = (ws, pred, what) => until(() => ws.frames.find(pred), what);
  const a = open('olga');
  const b = open('paul');
  try {
    await frame(a, (f) => f.op === 'welcome', 'olga welcome');
    a.send(JSON.stringify({ op: 'join', room: 'r-raw', visible: true }));
    await frame(a, (f) => f.op === 'subscribed' && f.rooms?.length, 'olga in the room');
    a._socket.pause();
    const filler = 'v'.repeat(40);
    for (let k = 0; k < 8; k++) a.send(JSON.stringify({ op: 'subscribe', users: Array.from({ length: 500 }, (_, i) => `${filler}-${k}-${i}`) }));
    await sleep(2000);
    await frame(b, (f) => f.op === 'welcome', 'paul welcome');
    b.send(JSON.stringify({ op: 'join', room: 'r-raw', visible: true }));
    await frame(b, (f) => f.op === 'subscribed' && f.rooms?.length, 'paul in the room');
    await sleep(500);
    a._socket.resume();
    await frame(a, (f) => f.op === 'room' && f.room_id === 'r-raw', 'a room frame for olga');
    await sleep(500);
    const events = a.frames.filter((f) => f.op === 'room' && f.room_id === 'r-raw').map((f) => f.event + (f.user_id ? ':' + f.user_id : ''));
    assert.ok(events.includes('join:paul'), 'olga got ' + events.join(', '));
  } finally {
    a.terminate();
    b.terminate();
  }
});
