// Unit tests of the client's state machine: injected clock, fake socket,
// fetch, storage, channel and page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, connect } from '../../src/index.js';
import { setup, welcome, flush, FakeClock, sockets, fakeFetch, MemoryStorage, channelHub, fakePage } from '../helpers/fakes.js';

const startOpen = async (over) => {
  const t = setup(over);
  t.client.start();
  await flush();
  return { ...t, sock: t.ws.all.at(-1) };
};

test('backoff: full jitter stays within [0, min(cap, base*2^n))', () => {
  for (let n = 0; n < 12; n++) {
    const ceil = Math.min(30000, 500 * 2 ** n);
    assert.equal(backoffDelay(n, 500, 30000, () => 0), 0);
    assert.ok(backoffDelay(n, 500, 30000, () => 0.999999) < ceil);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(n, 500, 30000);
      assert.ok(d >= 0 && d < ceil, `attempt ${n}: ${d}`);
    }
  }
  // Full jitter spreads over the whole window (not "cap/2 + jitter").
  const ds = Array.from({ length: 2000 }, () => backoffDelay(6, 500, 30000));
  assert.ok(Math.min(...ds) < 3000 && Math.max(...ds) > 27000);
});

test('reconnect: failed connects back off exponentially with jitter, capped, and reset on welcome', async () => {
  const { client, clock, ws } = await startOpen({ options: { probe: false } });
  assert.equal(ws.all.length, 1);
  const delays = [];
  for (let i = 0; i < 9; i++) {
    ws.all.at(-1).drop();
    delays.push(client.lastDelay);
    const before = ws.all.length;
    await clock.advance(client.lastDelay - 1);
    assert.equal(ws.all.length, before, 'not before the delay');
    await clock.advance(1);
    assert.equal(ws.all.length, before + 1, 'at the delay');
  }
  // random() = 0.5: half of each ceiling.
  assert.deepEqual(delays, [250, 500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
  // A welcome and an immediate drop (a node in a crash loop) keeps backing off.
  welcome(ws.all.at(-1));
  ws.all.at(-1).drop();
  assert.equal(client.lastDelay, 15000, 'a bare welcome does not reset the backoff');
  await clock.advance(15000);
  // A session that stayed up for stableMs (10 s) resets it.
  welcome(ws.all.at(-1));
  await clock.advance(10000);
  ws.all.at(-1).drop();
  assert.equal(client.lastDelay, 250, 'a stable session resets the backoff');
});

test('Retry-After from /readyz after a refused connect is honoured', async () => {
  const fetch = fakeFetch((m, path) =>
    path === '/readyz' ? { status: 503, body: { status: 'recovering' }, headers: { 'Retry-After': '7' } } : { status: 200, body: {} });
  const { client, clock, ws } = await startOpen({ fetch });
  ws.all[0].drop(); // closed before any welcome: the upgrade was refused
  await flush();
  assert.ok(fetch.calls.some((c) => c.path === '/readyz'));
  assert.equal(client.lastDelay, 7000);
  await clock.advance(6999);
  assert.equal(ws.all.length, 1);
  // "At once" events still wait for Retry-After.
  client.wake();
  assert.equal(ws.all.length, 1);
  await clock.advance(1);
  assert.equal(ws.all.length, 2);
});

test('Retry-After from an HTTP answer (guest token 503) is honoured', async () => {
  let calls = 0;
  const fetch = fakeFetch((m, path) => {
    if (path === '/v1/guests')
      return ++calls === 1 ? { status: 503, body: { error: { code: 'unavailable' } }, headers: { 'Retry-After': '3' } } : { status: 201, body: { token: 'G', user_id: 'guest:1' } };
    return { status: 200, body: {} };
  });
  const { client, clock, ws } = await startOpen({ fetch, options: { token: undefined } });
  assert.equal(ws.all.length, 0);
  assert.equal(client.lastDelay, 3000);
  await clock.advance(3000);
  assert.equal(ws.all.length, 1);
  assert.equal(client.guestToken, 'G');
});

test('hello carries the token (not the URL); a drop resumes with session_id and resume_token', async () => {
  const { client, clock, ws, sock } = await startOpen();
  assert.equal(sock.url, 'ws://127.0.0.1:9/v1/ws');
  sock.open();
  assert.deepEqual(sock.sent[0], { op: 'hello', signal: 'active', token: 'T' });
  sock.recv({ op: 'welcome', session_id: 's1', user_id: 'alice', resume_token: 'r1', heartbeat_ms: 10000, server_time: clock.now(), resumed: false });
  client.join('lobby', { visible: true });
  client.user('bob').subscribe(() => {});
  assert.deepEqual(sock.sent.slice(1), [
    { op: 'join', room: 'lobby', visible: true },
    { op: 'subscribe', users: ['bob'] },
  ]);
  sock.drop();
  await clock.advance(250);
  const s2 = ws.all[1];
  s2.open();
  assert.equal(s2.sent[0].session_id, 's1');
  assert.equal(s2.sent[0].resume_token, 'r1');
  assert.equal(s2.sent[0].token, 'T');
  s2.recv({ op: 'welcome', session_id: 's1', user_id: 'alice', resume_token: 'r1', heartbeat_ms: 10000, server_time: clock.now(), resumed: true });
  // Resumed: membership is the server's; the socket subscribes again.
  assert.deepEqual(s2.sent.slice(1), [{ op: 'subscribe', users: ['bob'] }, { op: 'subscribe', rooms: ['lobby'] }]);
  s2.drop();
  await clock.advance(500); // the backoff did not reset: s2 lived less than stableMs
  const s3 = ws.all[2];
  welcome(s3, { resumed: false });
  // A new session: rooms are joined again.
  assert.deepEqual(s3.sent.slice(1), [{ op: 'subscribe', users: ['bob'] }, { op: 'join', room: 'lobby', visible: true }]);
});

test("token transport 'query' puts it in the URL for v1 servers", async () => {
  const { sock } = await startOpen({ options: { tokenTransport: 'query' } });
  assert.equal(sock.url, 'ws://127.0.0.1:9/v1/ws?token=T');
  sock.open();
  assert.equal(sock.sent[0].token, undefined);
});

test('a resume refused (session_not_found) opens a new session on the same socket', async () => {
  const storage = new MemoryStorage([['presenced:http://127.0.0.1:9', JSON.stringify({ sid: 'old', rt: 'r', uid: 'alice', used: false })]]);
  const { sock, client } = await startOpen({ storage });
  sock.open();
  assert.equal(sock.sent[0].session_id, 'old');
  sock.recv({ op: 'error', code: 'session_not_found', message: 'x' });
  assert.equal(sock.sent.length, 2);
  assert.equal(sock.sent[1].op, 'hello');
  assert.equal(sock.sent[1].session_id, undefined);
  welcome(sock, { session_id: 'new' });
  assert.equal(JSON.parse(storage.getItem(client.key)).sid, 'new');
  // A session that expires under an open socket: hello again.
  sock.recv({ op: 'error', code: 'session_not_found', message: 'ended' });
  assert.equal(sock.sent.at(-1).op, 'hello');
  assert.equal(sock.sent.at(-1).session_id, undefined);
});

test('heartbeats follow the heartbeat_ms the server gives', async () => {
  const { clock, sock } = await startOpen();
  welcome(sock, { heartbeat_ms: 10000, server_time: clock.now() });
  await clock.advance(7999);
  assert.equal(sock.sent.filter((m) => m.op === 'signal').length, 0);
  await clock.advance(1);
  assert.deepEqual(sock.last('signal'), { op: 'signal', signal: 'idle' }, 'no input since: idle');
  sock.recv({ op: 'ack', state: 'away', heartbeat_ms: 60000 });
  await clock.advance(57999); // 60000 after the last signal, less the margin
  assert.equal(sock.sent.filter((m) => m.op === 'signal').length, 1);
  await clock.advance(1);
  assert.equal(sock.sent.filter((m) => m.op === 'signal').length, 2);
});

test("'active N s ago' uses the server's clock", async () => {
  const { client, clock, sock } = await startOpen();
  const serverNow = clock.now() + 3_600_000; // server an hour ahead of the browser
  welcome(sock, { server_time: serverNow });
  assert.equal(client.serverNow(), serverNow);
  await clock.advance(5000);
  assert.equal(client.ago(serverNow - 10000), 15000);
  assert.equal(client.ago(null), null);
});

test('seq gap: events apply in order, old ones are dropped, a jump asks for a fresh snapshot', async () => {
  const { client, sock } = await startOpen();
  welcome(sock);
  const v = client.user('bob');
  const seen = [];
  v.subscribe((val, ch) => seen.push([val.state, val.seq, ch.type, !!ch.gap]));
  sock.recv({ op: 'subscribed', users: [{ user_id: 'bob', state: 'active', seq: 3, since: 1, last_active_at: 1, confidence: 1, sessions: [] }], rooms: [] });
  sock.recv({ op: 'presence', user_id: 'bob', state: 'idle', prev: 'active', seq: 4, since: 2, last_active_at: 1 });
  sock.recv({ op: 'presence', user_id: 'bob', state: 'active', prev: 'idle', seq: 4, since: 2, last_active_at: 1 });
  const subs = sock.sent.filter((m) => m.op === 'subscribe').length;
  sock.recv({ op: 'presence', user_id: 'bob', state: 'away', prev: 'stale', seq: 7, since: 3, last_active_at: 1 });
  assert.deepEqual(seen, [
    ['active', 3, 'snapshot', false],
    ['idle', 4, 'presence', false],
    ['away', 7, 'presence', true],
  ]);
  assert.equal(sock.sent.filter((m) => m.op === 'subscribe').length, subs + 1);
  assert.deepEqual(sock.sent.at(-1), { op: 'subscribe', users: ['bob'] });
  sock.recv({ op: 'subscribed', users: [{ user_id: 'bob', state: 'away', seq: 7, since: 3, last_active_at: 1, confidence: 0.9, sessions: [{ session_id: 'x' }] }], rooms: [] });
  assert.equal(v.get().confidence, 0.9);
  assert.equal(client.gaps, 1);
  // An event that overtakes its snapshot wins over it.
  sock.recv({ op: 'presence', user_id: 'bob', state: 'active', prev: 'away', seq: 8, since: 4, last_active_at: 4 });
  sock.recv({ op: 'subscribed', users: [{ user_id: 'bob', state: 'away', seq: 7, since: 3, sessions: [] }], rooms: [] });
  assert.equal(v.get().state, 'active');
  assert.equal(v.get().seq, 8);
});

test('room views: snapshot, join, member, leave, room_delta, truncated delta re-reads', async () => {
  const { client, sock } = await startOpen();
  welcome(sock);
  const r = client.room('lobby');
  const changes = [];
  r.subscribe((v, ch) => changes.push(ch.type));
  const base = { counts: { active: 1 }, readiness: 0.45, phase: 'gathering' };
  sock.recv({ op: 'subscribed', users: [], rooms: [{ room_id: 'lobby', ...base, members: [{ user_id: 'a', state: 'active', visible: true }] }] });
  sock.recv({ op: 'room', room_id: 'lobby', event: 'join', user_id: 'b', state: 'active', counts: { active: 2 }, readiness: 0.9, phase: 'ready' });
  sock.recv({ op: 'room', room_id: 'lobby', event: 'member', user_id: 'a', state: 'away', counts: { active: 1, away: 1 }, readiness: 0.3, phase: 'cooling' });
  assert.deepEqual(r.get().members.map((m) => [m.user_id, m.state]), [['a', 'away'], ['b', 'active']]);
  assert.equal(r.get().phase, 'cooling');
  sock.recv({ op: 'room', room_id: 'lobby', event: 'leave', user_id: 'a', counts: { active: 1 }, readiness: 0.45, phase: 'cooling' });
  sock.recv({ op: 'room_delta', room_id: 'lobby', counts: { active: 1, idle: 1 }, readiness: 0.5, phase: 'cooling', changed: [{ user_id: 'b', state: 'idle' }, { user_id: 'c', state: 'active' }], truncated: false });
  assert.deepEqual(r.get().members.map((m) => [m.user_id, m.state]), [['b', 'idle'], ['c', 'active']]);
  sock.recv({ op: 'room_delta', room_id: 'lobby', counts: { active: 1 }, readiness: 0.5, phase: 'cooling', changed: [{ user_id: 'c', state: 'offline' }], truncated: false });
  assert.deepEqual(r.get().members.map((m) => m.user_id), ['b']);
  const n = sock.sent.length;
  sock.recv({ op: 'room_delta', room_id: 'lobby', counts: { active: 100 }, readiness: 1, phase: 'ready', changed: [], truncated: true });
  assert.deepEqual(sock.sent.slice(n), [{ op: 'subscribe', rooms: ['lobby'] }]);
  assert.deepEqual(changes, ['snapshot', 'join', 'member', 'leave', 'delta', 'delta', 'delta']);
});

test('room views: a room frame lost to coalescing (counts disagree with the members) asks for a snapshot', async () => {
  const { client, sock } = await startOpen();
  welcome(sock);
  const r = client.room('lobby');
  const changes = [];
  r.subscribe((v, ch) => changes.push([ch.type, !!ch.gap]));
  const counts = (active, idle = 0) => ({ active, idle, away: 0, stale: 0, offline: 0 });
  sock.recv({ op: 'subscribed', users: [], rooms: [{ room_id: 'lobby', counts: counts(1), member_count: 1, next_after: null, readiness: 0.45, phase: 'gathering', members: [{ user_id: 'erin', state: 'active', visible: true }] }] });
  const subs = () => sock.sent.filter((m) => m.op === 'subscribe').length;
  const n = subs();
  // frank's `join` was replaced by the `phase` that followed it (the socket was behind).
  sock.recv({ op: 'room', room_id: 'lobby', event: 'phase', counts: counts(2), readiness: 0.9, phase: 'ready' });
  assert.equal(subs(), n + 1, 'a fresh snapshot is asked for');
  assert.deepEqual(sock.sent.at(-1), { op: 'subscribe', rooms: ['lobby'] });
  assert.equal(client.gaps, 1);
  sock.recv({ op: 'subscribed', users: [], rooms: [{ room_id: 'lobby', counts: counts(2), member_count: 2, next_after: null, readiness: 0.9, phase: 'ready', members: [{ user_id: 'erin', state: 'active', visible: true }, { user_id: 'frank', state: 'active', visible: true }] }] });
  assert.deepEqual(r.get().members.map((m) => m.user_id + ':' + m.state), ['erin:active', 'frank:active']);
  // A lost member change shows the same way.
  sock.recv({ op: 'room', room_id: 'lobby', event: 'member', user_id: 'frank', state: 'idle', counts: counts(0, 2), readiness: 0.3, phase: 'cooling' });
  assert.equal(subs(), n + 2);
  sock.recv({ op: 'subscribed', users: [], rooms: [{ room_id: 'lobby', counts: counts(0, 2), member_count: 2, next_after: null, readiness: 0.3, phase: 'cooling', members: [{ user_id: 'erin', state: 'idle', visible: true }, { user_id: 'frank', state: 'idle', visible: true }] }] });
  // An observer (invisible) joining leaves the counts alone: no snapshot, and it is marked invisible.
  sock.recv({ op: 'room', room_id: 'lobby', event: 'join', user_id: 'guest:1', state: 'active', counts: counts(0, 2), readiness: 0.3, phase: 'cooling' });
  assert.equal(subs(), n + 2);
  assert.deepEqual(r.get().members.find((m) => m.user_id === 'guest:1'), { user_id: 'guest:1', state: 'active', visible: false });
  assert.equal(r.get().member_count, 3, 'member_count follows joins and leaves');
  sock.recv({ op: 'room', room_id: 'lobby', event: 'leave', user_id: 'guest:1', counts: counts(0, 2), readiness: 0.3, phase: 'cooling' });
  assert.equal(r.get().member_count, 2);
  assert.equal(subs(), n + 2, 'consistent events ask for nothing');
  assert.deepEqual(changes.map((c) => c.join(':')), ['snapshot:false', 'phase:true', 'snapshot:false', 'member:true', 'snapshot:false', 'join:false', 'leave:false']);
  // A paged member list (next_after) cannot be checked: counts alone ask for nothing.
  const big = client.room('big');
  big.subscribe(() => {});
  sock.recv({ op: 'subscribed', users: [], rooms: [{ room_id: 'big', counts: counts(150), member_count: 150, next_after: 'u100', readiness: 1, phase: 'ready', members: [{ user_id: 'u1', state: 'active', visible: true }] }] });
  const m = subs();
  sock.recv({ op: 'room', room_id: 'big', event: 'join', user_id: 'u151', state: 'active', counts: counts(151), readiness: 1, phase: 'ready' });
  assert.equal(subs(), m);
});

test('room views: a seq on room frames (when the server sends one) drops old frames and re-reads on a jump', async () => {
  const { client, sock } = await startOpen();
  welcome(sock);
  const r = client.room('lobby');
  r.subscribe(() => {});
  sock.recv({ op: 'subscribed', users: [], rooms: [{ room_id: 'lobby', seq: 5, counts: { active: 1 }, readiness: 0.45, phase: 'gathering', members: [{ user_id: 'a', state: 'active', visible: true }] }] });
  sock.recv({ op: 'room', room_id: 'lobby', seq: 5, event: 'leave', user_id: 'a', counts: {}, readiness: 0, phase: 'empty' });
  assert.equal(r.get().members.length, 1, 'a frame the snapshot already holds is dropped');
  const n = sock.sent.length;
  sock.recv({ op: 'room', room_id: 'lobby', seq: 6, event: 'join', user_id: 'b', state: 'active', counts: { active: 2 }, readiness: 0.9, phase: 'ready' });
  assert.equal(sock.sent.length, n);
  sock.recv({ op: 'room', room_id: 'lobby', seq: 8, event: 'phase', counts: { active: 2 }, readiness: 0.9, phase: 'ready' });
  assert.deepEqual(sock.sent.slice(n), [{ op: 'subscribe', rooms: ['lobby'] }]);
});

test('after a welcome, each room is subscribed in its own frame (a shared answer would let events overtake a snapshot)', async () => {
  const { client, clock, ws, sock } = await startOpen();
  welcome(sock);
  client.user('bob').subscribe(() => {});
  client.user('carol').subscribe(() => {});
  client.room('r1').subscribe(() => {});
  client.room('r2').subscribe(() => {});
  sock.drop();
  await clock.advance(250);
  welcome(ws.all[1], { resumed: true });
  assert.deepEqual(ws.all[1].sent.slice(1), [
    { op: 'subscribe', users: ['bob', 'carol'] },
    { op: 'subscribe', rooms: ['r1'] },
    { op: 'subscribe', rooms: ['r2'] },
  ]);
  // A topic the server could not subscribe now is retried the same way.
  ws.all[1].recv({ op: 'error', code: 'unavailable', message: 'x', topics: [{ user: 'bob' }, { room: 'r1' }, { room: 'r2' }] });
  const n = ws.all[1].sent.length;
  await clock.advance(1000);
  assert.deepEqual(ws.all[1].sent.slice(n), [{ op: 'subscribe', users: ['bob'] }, { op: 'subscribe', rooms: ['r1'] }, { op: 'subscribe', rooms: ['r2'] }]);
});

test('intents: incoming and outgoing with their changes', async () => {
  const fetch = fakeFetch((m, path) =>
    path === '/v1/users/alice/intents'
      ? { status: 200, body: { incoming: [{ intent_id: 'i0', from_user: 'carol', to_user: 'alice', status: 'delivered' }], outgoing: [] } }
      : path === '/v1/intents'
        ? { status: 201, body: { intent_id: 'i1', from_user: 'alice', to_user: 'bob', status: 'pending' } }
        : { status: 200, body: {} });
  const { client, sock } = await startOpen({ fetch });
  const seen = [];
  client.intents.subscribe((v, ch) => seen.push(ch));
  welcome(sock, { user_id: 'alice' });
  await flush();
  assert.equal(client.intents.get().incoming[0].intent_id, 'i0');
  const x = await client.intend({ to_user: 'bob', kind: 'call' });
  assert.equal(x.status, 'pending');
  assert.deepEqual(fetch.calls.find((c) => c.path === '/v1/intents').body, { to_user: 'bob', kind: 'call' });
  assert.equal(fetch.calls.find((c) => c.path === '/v1/intents').init.headers.Authorization, 'Bearer T');
  sock.recv({ op: 'intent', intent: { intent_id: 'i1', from_user: 'alice', to_user: 'bob', status: 'delivered' } });
  assert.equal(client.intents.get().outgoing[0].status, 'delivered');
  assert.deepEqual([seen.at(-1).direction, seen.at(-1).prev, seen.at(-1).intent.status], ['outgoing', 'pending', 'delivered']);
});

test('lifecycle: input (throttled) → active, no input → idle, hidden → background, visible → active', async () => {
  const page = fakePage();
  const { client, clock, sock } = await startOpen({ env: page.env, options: { idleAfterMs: 30000, activeThrottleMs: 5000 } });
  welcome(sock, { heartbeat_ms: 60000 });
  const signals = () => sock.sent.filter((m) => m.op === 'signal').map((m) => m.signal);
  page.input(); // the first signal after hello carried 'active': throttled
  assert.deepEqual(signals(), []);
  await clock.advance(1000);
  page.input();
  page.input();
  assert.deepEqual(signals(), []);
  await clock.advance(4000); // trailing active at the throttle boundary
  assert.deepEqual(signals(), ['active']);
  await clock.advance(6000);
  page.input(); // throttle window passed: at once
  assert.deepEqual(signals(), ['active', 'active']);
  await clock.advance(30000); // no input for idleAfterMs
  assert.deepEqual(signals(), ['active', 'active', 'idle']);
  assert.equal(client.activity, 'idle');
  page.input(); // idle → active at once
  assert.deepEqual(signals().at(-1), 'active');
  page.hide();
  assert.deepEqual(signals().at(-1), 'background');
  page.input(); // hidden pages have no input to speak of
  assert.deepEqual(signals().at(-1), 'background');
  await clock.advance(60000); // heartbeat while hidden says background
  assert.deepEqual(signals().slice(-2), ['background', 'background']);
  page.show();
  assert.deepEqual(signals().at(-1), 'active');
  page.freeze();
  assert.deepEqual(signals().at(-1), 'background');
  page.resume();
  assert.deepEqual(signals().at(-1), 'active');
  client.background(true);
  assert.deepEqual(signals().at(-1), 'background');
  client.background(false);
  assert.deepEqual(signals().at(-1), 'active');
});

test('lifecycle: pagehide sends a pending leave beacon and closes; pageshow from bfcache resumes', async () => {
  const page = fakePage();
  const { client, clock, ws, sock, storage } = await startOpen({ env: page.env, options: { leaveAfterMs: 3000 } });
  welcome(sock, { session_id: 's9', resume_token: 'r9' });
  page.pagehide(true);
  assert.deepEqual(page.beacons, [{ url: 'http://127.0.0.1:9/v1/sessions/s9/leave', body: { resume_token: 'r9', after_ms: 3000 } }]);
  assert.equal(sock.closed, 1000);
  assert.ok(!sock.sent.some((m) => m.op === 'leave'), 'not an explicit leave');
  assert.equal(JSON.parse(storage.getItem(client.key)).used, false);
  await clock.advance(60000);
  assert.equal(ws.all.length, 1, 'no reconnect while in the bfcache');
  page.pageshow(true);
  await flush();
  const s2 = ws.all[1];
  s2.open();
  assert.equal(s2.sent[0].session_id, 's9');
  assert.equal(s2.sent[0].resume_token, 'r9');
});

test('lifecycle: online, visible, pageshow and resume reconnect at once during a backoff', async () => {
  const page = fakePage();
  const { client, ws, sock } = await startOpen({ env: page.env, options: { probe: false } });
  welcome(sock);
  for (const ev of ['online', 'show', 'pageshow', 'resume']) {
    const n = ws.all.length;
    for (let i = 0; i < 4; i++) ws.all.at(-1).drop(); // grow the backoff
    ws.all.at(-1).drop();
    if (ev === 'show') page.hide();
    assert.equal(ws.all.length, n);
    page[ev](false);
    await flush();
    assert.equal(ws.all.length, n + 1, ev + ' reconnects at once');
    welcome(ws.all.at(-1));
  }
  assert.ok(client);
});

test('wake: a socket that looks open but answers nothing (after a sleep) is replaced and the session resumed', async () => {
  const page = fakePage();
  const { client, clock, ws, sock } = await startOpen({ env: page.env, options: { liveTimeoutMs: 5000 } });
  welcome(sock, { session_id: 'sL', resume_token: 'rL' });
  page.hide();
  // Alive: any frame within liveTimeoutMs answers the probe.
  page.show();
  assert.deepEqual(sock.last('subscribe'), { op: 'subscribe' }, 'an empty subscribe is answered at once');
  await clock.advance(1000);
  sock.recv({ op: 'subscribed', users: [], rooms: [] });
  await clock.advance(10000);
  assert.equal(ws.all.length, 1, 'an answer keeps the socket');
  // The laptop slept: the socket still looks open, nothing comes back.
  const errors = [];
  client.on('error', (e) => errors.push(e.code));
  page.online();
  page.online(); // one probe at a time
  assert.equal(sock.sent.filter((m) => m.op === 'subscribe' && !m.users && !m.rooms).length, 2);
  await clock.advance(4999);
  assert.equal(ws.all.length, 1);
  await clock.advance(1 + 250); // dead: dropped, and a reconnect after the first backoff
  assert.equal(sock.closed, 4001);
  assert.deepEqual(errors, ['dead_socket']);
  assert.equal(ws.all.length, 2);
  ws.all[1].open();
  assert.equal(ws.all[1].sent[0].session_id, 'sL', 'resumes the session');
  assert.equal(ws.all[1].sent[0].resume_token, 'rL');
  // Frames of the dead socket are not read any more.
  sock.recv({ op: 'welcome', session_id: 'zombie' });
  assert.equal(client.status, 'reconnecting');
});

test('unavailable topics of several errors are all retried, those still watched only', async () => {
  const { client, clock, sock } = await startOpen();
  welcome(sock);
  client.user('bob').subscribe(() => {});
  const offCarol = client.user('carol').subscribe(() => {});
  client.room('r1').subscribe(() => {});
  const n = sock.sent.length;
  sock.recv({ op: 'error', code: 'unavailable', message: 'x', topics: [{ user: 'bob' }, { room: 'r1' }] });
  await clock.advance(500);
  sock.recv({ op: 'error', code: 'unavailable', message: 'x', topics: [{ user: 'carol' }] });
  offCarol();
  await clock.advance(500);
  assert.deepEqual(sock.sent.slice(n), [{ op: 'subscribe', users: ['bob'] }, { op: 'subscribe', rooms: ['r1'] }]);
});

test('a burst of seq gaps asks for one snapshot until it comes', async () => {
  const { client, clock, sock } = await startOpen();
  welcome(sock);
  client.user('bob').subscribe(() => {});
  sock.recv({ op: 'subscribed', users: [{ user_id: 'bob', state: 'active', seq: 1, sessions: [] }], rooms: [] });
  const asks = () => sock.sent.filter((m) => m.op === 'subscribe' && m.users?.[0] === 'bob').length;
  const n = asks();
  for (let seq = 3; seq < 20; seq += 2) sock.recv({ op: 'presence', user_id: 'bob', state: seq % 4 === 1 ? 'idle' : 'active', seq, since: seq });
  assert.equal(asks(), n + 1);
  sock.recv({ op: 'subscribed', users: [{ user_id: 'bob', state: 'active', seq: 19, sessions: [] }], rooms: [] });
  sock.recv({ op: 'presence', user_id: 'bob', state: 'idle', seq: 21, since: 21 });
  assert.equal(asks(), n + 2, 'a gap after the snapshot asks again');
  await clock.advance(2000);
  sock.recv({ op: 'presence', user_id: 'bob', state: 'active', seq: 23, since: 23 });
  assert.equal(asks(), n + 3, 'an unanswered ask is repeated after 2 s');
});

test('a stream of pointermove events does not set a timer each; idle still comes idleAfterMs after the last input', async () => {
  const page = fakePage();
  const clock = new FakeClock();
  let sets = 0;
  const counting = { now: () => clock.now(), setTimeout: (f, ms) => (sets++, clock.setTimeout(f, ms)), clearTimeout: (t) => clock.clearTimeout(t) };
  const { client, sock } = await startOpen({ env: page.env, clock, options: { clock: counting, idleAfterMs: 30000, activeThrottleMs: 5000 } });
  welcome(sock, { heartbeat_ms: 600000 });
  const before = sets;
  let last;
  for (let i = 0; i < 600; i++) {
    await clock.advance(16);
    page.env.window.dispatchEvent(new Event('pointermove'));
    last = clock.now();
  }
  assert.ok(sets - before < 20, sets - before + ' timers for 600 events');
  await clock.advance(29999);
  assert.notEqual(client.activity, 'idle');
  await clock.advance(1);
  assert.equal(client.activity, 'idle');
  assert.equal(clock.now() - last, 30000);
  assert.equal(sock.last('signal').signal, 'idle');
});

test('without a leave beacon, fetch keepalive carries it', async () => {
  const page = fakePage();
  page.env.navigator.sendBeacon = undefined;
  const { fetch, sock } = await startOpen({ env: page.env });
  welcome(sock, { session_id: 's5', resume_token: 'r5' });
  page.pagehide(false);
  const call = fetch.calls.find((c) => c.path === '/v1/sessions/s5/leave');
  assert.ok(call.init.keepalive);
  assert.deepEqual(call.body, { resume_token: 'r5', after_ms: 3000 });
  assert.equal(call.init.headers.Authorization, undefined);
});

test('duplicated tab: the copy opens its own session; a reload resumes; a crashed tab is resumed after the claim wait', async () => {
  const clock = new FakeClock();
  const Channel = channelHub();
  const a = setup({ clock, BroadcastChannel: Channel });
  a.client.start();
  await flush();
  welcome(a.ws.all[0], { session_id: 'sA', resume_token: 'rA' });
  // Duplicate: sessionStorage copied, marked in use, and tab A answers the claim.
  const b = setup({ clock, BroadcastChannel: Channel, storage: a.storage.copy() });
  b.client.start();
  await clock.advance(200);
  const sb = b.ws.all[0];
  sb.open();
  assert.equal(sb.sent[0].session_id, undefined, 'the copy does not steal the session');
  assert.equal(b.client.duplicate, true);
  welcome(sb, { session_id: 'sB' });
  assert.equal(JSON.parse(a.storage.getItem(a.client.key)).sid, 'sA');
  // Reload of A: pagehide marks the entry free, the new page resumes at once.
  a.client.pagehide(false);
  a.client.destroy();
  const a2 = setup({ clock, BroadcastChannel: Channel, storage: a.storage });
  a2.client.start();
  await flush();
  a2.ws.all[0].open();
  assert.equal(a2.ws.all[0].sent[0].session_id, 'sA');
  // A tab that died without pagehide: entry still in use, nobody answers.
  const c = setup({ clock, BroadcastChannel: Channel, storage: new MemoryStorage([[a.client.key, JSON.stringify({ sid: 'sX', rt: 'rX', used: true })]]) });
  c.client.start();
  await flush();
  assert.equal(c.ws.all.length, 0, 'waits for the claim');
  await clock.advance(150);
  c.ws.all[0].open();
  assert.equal(c.ws.all[0].sent[0].session_id, 'sX');
  assert.equal(c.client.duplicate, false);
});

test('taken over: a tab whose session another socket resumed forgets it and opens its own at once, keeping its views and rooms', async () => {
  const page = fakePage();
  const { client, clock, ws, storage, sock } = await startOpen({ env: page.env });
  const errors = [];
  client.on('error', (e) => errors.push(e.code));
  welcome(sock, { session_id: 'sA', resume_token: 'rA' });
  client.join('lobby', { visible: true });
  client.user('bob').subscribe(() => {});
  // A duplicated tab resumed sA while this one was frozen: the node says so,
  // then closes this socket with 4409.
  sock.recv({ op: 'error', code: 'session_taken_over', message: 'this session was resumed on another connection' });
  assert.equal(sock.closed, 1000, 'the old socket is closed by the client');
  assert.deepEqual(errors, ['session_taken_over']);
  assert.equal(JSON.parse(storage.getItem(client.key)).sid, undefined, 'sA is forgotten');
  await flush();
  assert.equal(ws.all.length, 2, 'a new socket at once, no backoff');
  const s2 = ws.all[1];
  s2.open();
  assert.equal(s2.sent[0].op, 'hello');
  assert.equal(s2.sent[0].session_id, undefined, 'sA is not resumed (no ping-pong between the tabs)');
  assert.equal(s2.sent[0].resume_token, undefined);
  s2.recv({ op: 'welcome', session_id: 'sC', user_id: 'alice', resume_token: 'rC', heartbeat_ms: 10000, server_time: clock.now(), resumed: false });
  assert.equal(client.duplicate, undefined, 'this tab is the original, not a copy');
  assert.deepEqual(s2.sent.slice(1), [{ op: 'subscribe', users: ['bob'] }, { op: 'join', room: 'lobby', visible: true }]);
  assert.equal(JSON.parse(storage.getItem(client.key)).sid, 'sC');
  // A bare close 4409 (the error frame never came) does the same.
  s2.drop(4409);
  await flush();
  assert.equal(ws.all.length, 3, 'a new socket at once');
  ws.all[2].open();
  assert.equal(ws.all[2].sent[0].session_id, undefined);
  page.pagehide(false);
  assert.deepEqual(page.beacons, [], 'no leave for a session that is another tab\'s');
  await clock.advance(0);
});

test('ref-counting: one socket for the page; the last release leaves after a grace; a remount keeps it', async () => {
  const clock = new FakeClock();
  const ws = sockets();
  const opts = { url: 'http://127.0.0.1:7', token: 'T', WebSocket: ws.FakeSocket, fetch: fakeFetch(), clock, random: () => 0.5, storage: null, BroadcastChannel: null, env: null };
  const c1 = connect(opts);
  const c2 = connect(opts);
  assert.equal(c1, c2);
  await flush();
  assert.equal(ws.all.length, 1);
  welcome(ws.all[0]);
  c1.release();
  // StrictMode-like unmount + mount.
  c2.release();
  const c3 = connect(opts);
  await clock.advance(5000);
  assert.equal(c3, c1);
  assert.equal(ws.all.length, 1);
  assert.equal(ws.all[0].closed, undefined);
  c3.release();
  await clock.advance(999);
  assert.equal(ws.all[0].closed, undefined);
  await clock.advance(1);
  assert.deepEqual(ws.all[0].last('leave'), { op: 'leave', after_ms: 3000 });
  assert.equal(ws.all[0].closed, 1000);
  const c4 = connect(opts);
  assert.notEqual(c4, c1, 'a new client after the last release');
  c4.destroy();
  // A view watched twice subscribes once and unsubscribes after the last listener.
  const t = await startOpen();
  welcome(t.sock);
  const off1 = t.client.user('bob').subscribe(() => {});
  const off2 = t.client.user('bob').subscribe(() => {});
  assert.equal(t.sock.sent.filter((m) => m.op === 'subscribe').length, 1);
  off1();
  off2();
  await t.clock.advance(1000);
  assert.deepEqual(t.sock.last('unsubscribe'), { op: 'unsubscribe', users: ['bob'] });
});

test('an expired guest token is replaced (unauthorized closes and fetches a new one)', async () => {
  let n = 0;
  const fetch = fakeFetch((m, path) => (path === '/v1/guests' ? { status: 201, body: { token: 'G' + ++n } } : { status: 200, body: {} }));
  const { client, clock, ws } = await startOpen({ fetch, options: { token: undefined } });
  ws.all[0].open();
  assert.equal(ws.all[0].sent[0].token, 'G1');
  ws.all[0].recv({ op: 'error', code: 'unauthorized', message: 'token expired' });
  assert.equal(ws.all[0].closed, 4000);
  ws.all[0].drop(4000);
  await clock.advance(1000);
  ws.all[1].open();
  assert.equal(ws.all[1].sent[0].token, 'G2');
  assert.ok(client);
});
