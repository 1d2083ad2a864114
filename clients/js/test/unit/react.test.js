// The React binding (src/react.js) against a minimal React that enforces the
// hooks' contracts (test/helpers/fake-react.js): stable snapshots, subscribe
// after commit and unsubscribe on unmount, StrictMode double mounts, server
// rendering; one shared, reference-counted connection for every mount.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bindReact } from '../../src/react.js';
import { shared, connect } from '../../src/client.js';
import { createReact } from '../helpers/fake-react.js';
import { FakeClock, sockets, fakeFetch, flush, welcome } from '../helpers/fakes.js';

let port = 1000;
function world() {
  const clock = new FakeClock();
  const ws = sockets();
  // A url of its own: the shared clients live in one registry per page.
  const options = { url: 'http://127.0.0.1:' + ++port, token: 'T', WebSocket: ws.FakeSocket, fetch: fakeFetch(), clock, random: () => 0.5, storage: null, BroadcastChannel: null, env: null };
  return { clock, ws, options };
}
const bob = (state, seq) => ({ user_id: 'bob', state, seq, since: seq, last_active_at: 1, confidence: 1, sessions: [] });

for (const strict of [false, true]) {
  const mode = strict ? ' (StrictMode)' : '';

  test('useUser: null, then the snapshot; one render per change; the same object between changes' + mode, async () => {
    const { React, mount } = createReact({ strict });
    const { usePresence, useUser } = bindReact(React);
    const { ws, options } = world();
    const seen = [];
    const Badge = ({ id }) => {
      const c = usePresence(options);
      const u = useUser(c, id);
      seen.push(u);
      return u ? u.state : '…';
    };
    const app = mount(Badge, { id: 'bob' });
    assert.equal(app.result, '…');
    await flush();
    assert.equal(ws.all.length, 1, 'one socket');
    const sock = ws.all[0];
    welcome(sock);
    assert.deepEqual(sock.sent.filter((m) => m.op === 'subscribe'), [{ op: 'subscribe', users: ['bob'] }], 'subscribed once');
    const renders = app.renders;
    sock.recv({ op: 'subscribed', users: [bob('active', 1)], rooms: [] });
    assert.equal(app.result, 'active');
    assert.equal(app.renders, renders + 1);
    // Nothing of bob changed: no render (the snapshot is the same object).
    sock.recv({ op: 'presence', user_id: 'bob', state: 'active', prev: 'idle', seq: 1, since: 1 }); // old news
    sock.recv({ op: 'subscribed', users: [], rooms: [] });
    assert.equal(app.renders, renders + 1);
    const before = seen.at(-1);
    app.rerender({ id: 'bob' }); // a parent re-renders
    assert.equal(seen.at(-1), before, 'same snapshot object without a change');
    sock.recv({ op: 'presence', user_id: 'bob', state: 'away', prev: 'active', seq: 2, since: 2 });
    assert.equal(app.result, 'away');
    app.unmount();
  });

  test('unmount unsubscribes (after the grace) and releases; the last release leaves' + mode, async () => {
    const { React, mount } = createReact({ strict });
    const { usePresence, useUser, useConnection } = bindReact(React);
    const { clock, ws, options } = world();
    const Badge = () => {
      const c = usePresence(options);
      useConnection(c);
      return useUser(c, 'bob')?.state ?? null;
    };
    const app = mount(Badge);
    await flush();
    const sock = ws.all[0];
    welcome(sock);
    sock.recv({ op: 'subscribed', users: [bob('active', 1)], rooms: [] });
    const client = shared(options);
    assert.equal(client.refs, 1, 'one reference per mounted component');
    assert.equal(client.user('bob').subs.size, 1, 'one listener');
    app.unmount();
    assert.equal(client.user('bob').subs.size, 0);
    assert.equal(client.connection.subs.size, 0);
    assert.equal(client.refs, 0);
    await clock.advance(1000);
    assert.deepEqual(sock.last('unsubscribe'), { op: 'unsubscribe', users: ['bob'] });
    assert.deepEqual(sock.last('leave'), { op: 'leave', after_ms: 3000 });
    assert.equal(sock.closed, 1000);
  });

  test('two components (and a remount) share one socket, reference-counted' + mode, async () => {
    const { React, mount } = createReact({ strict });
    const { usePresence, useRoom } = bindReact(React);
    const { clock, ws, options } = world();
    const clients = new Set();
    const Room = () => {
      const c = usePresence(options);
      clients.add(c);
      return useRoom(c, 'lobby')?.phase ?? null;
    };
    const a = mount(Room);
    const b = mount(Room);
    await flush();
    assert.equal(clients.size, 1, 'one client');
    assert.equal(ws.all.length, 1, 'one socket');
    const [client] = clients;
    assert.equal(client.refs, 2);
    welcome(ws.all[0]);
    assert.deepEqual(ws.all[0].sent.filter((m) => m.op === 'subscribe'), [{ op: 'subscribe', rooms: ['lobby'] }]);
    ws.all[0].recv({ op: 'subscribed', users: [], rooms: [{ room_id: 'lobby', counts: {}, readiness: 0, phase: 'gathering', members: [] }] });
    assert.equal(a.result, 'gathering');
    assert.equal(b.result, 'gathering');
    a.unmount();
    await clock.advance(5000);
    assert.equal(ws.all[0].closed, undefined, 'still open for b');
    assert.equal(ws.all[0].last('unsubscribe'), undefined, 'b still watches the room');
    b.unmount();
    const c = mount(Room); // a remount within the grace keeps the session
    await clock.advance(5000);
    assert.equal(ws.all.length, 1);
    assert.equal(ws.all[0].closed, undefined);
    assert.equal(c.result, 'gathering');
    c.unmount();
    await clock.advance(1000);
    assert.equal(ws.all[0].closed, 1000);
    // A mount after the last release left: a new client, a new socket.
    const d = mount(Room);
    await flush();
    assert.equal(ws.all.length, 2);
    assert.equal(clients.size, 2);
    d.unmount();
  });
}

test('an id changing from null to a user and to another moves the subscription', async () => {
  const { React, mount } = createReact();
  const { usePresence, useUser } = bindReact(React);
  const { clock, ws, options } = world();
  const Badge = ({ id }) => useUser(usePresence(options), id)?.state ?? null;
  const app = mount(Badge, { id: null });
  await flush();
  const sock = ws.all[0];
  welcome(sock);
  assert.equal(app.result, null);
  assert.deepEqual(sock.sent.filter((m) => m.op === 'subscribe'), [], 'nothing subscribed for a null id');
  app.rerender({ id: 'bob' });
  assert.deepEqual(sock.last('subscribe'), { op: 'subscribe', users: ['bob'] });
  sock.recv({ op: 'subscribed', users: [bob('idle', 3)], rooms: [] });
  assert.equal(app.result, 'idle');
  app.rerender({ id: 'carol' });
  assert.deepEqual(sock.last('subscribe'), { op: 'subscribe', users: ['carol'] });
  assert.equal(app.result, null);
  await clock.advance(1000);
  assert.deepEqual(sock.last('unsubscribe'), { op: 'unsubscribe', users: ['bob'] });
  app.unmount();
});

test('rendering alone (a render thrown away, or on a server) opens nothing; the server snapshot is null', async () => {
  const { React, renderToString } = createReact();
  const { usePresence, useUser, useConnection } = bindReact(React);
  const { clock, ws, options } = world();
  let client;
  const html = renderToString(() => {
    client = usePresence(options);
    useConnection(client);
    return String(useUser(client, 'bob'));
  });
  assert.equal(html, 'null');
  await clock.advance(60000);
  assert.equal(ws.all.length, 0, 'no socket');
  // The page's own connect() later gets the same client, and starts it.
  const c = connect(options);
  assert.equal(c, client);
  await flush();
  assert.equal(ws.all.length, 1);
  // Hydration: the server snapshot stays null while the view has a value.
  welcome(ws.all[0]);
  c.user('bob').subscribe(() => {});
  ws.all[0].recv({ op: 'subscribed', users: [bob('active', 1)], rooms: [] });
  assert.equal(renderToString(() => useUser(usePresence(options), 'bob')), null);
  c.destroy();
});

test('the fake React catches a getSnapshot that returns a new object each time', () => {
  const { React, mount } = createReact();
  const Bad = () => React.useSyncExternalStore(() => () => {}, () => ({}), () => null);
  assert.throws(() => mount(Bad), /getSnapshot should be cached/);
});

test('a client a render took, committed after the last release left, is the shared one again', async () => {
  const { clock, ws, options } = world();
  const other = connect(options); // another part of the page
  await flush();
  const late = shared(options); // a render takes it (no reference) ...
  other.release();
  await clock.advance(1000); // ... the last release leaves before the commit
  assert.equal(ws.all[0].closed, 1000);
  late.acquire(); // the late commit (usePresence's effect)
  await flush();
  assert.equal(ws.all.length, 2, 'started again');
  assert.equal(connect(options), late, 'the late client is shared again: one socket');
  assert.equal(ws.all.length, 2);
  late.destroy();
});
