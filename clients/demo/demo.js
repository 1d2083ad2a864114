// presenced live demo: guests (or users with #token=...) in a room.
import { connect } from './lib/index.js';

const q = new URLSearchParams(location.search);
const roomId = q.get('room') || 'demo';
const token = new URLSearchParams(location.hash.slice(1)).get('token') || undefined;
const client = connect({ token, device: 'demo' });
const $ = (id) => document.getElementById(id);
$('room').textContent = roomId;

const room = client.join(roomId, { visible: true });
const userViews = new Map();
const secs = (ms) => (ms == null ? '—' : Math.round(ms / 1000) + ' s ago');

function render() {
  const r = room.get();
  $('phase').textContent = r ? `${r.phase}, readiness ${r.readiness.toFixed(2)}` : '';
  const box = $('users');
  const members = r ? r.members : [];
  for (const el of [...box.children]) if (!members.some((m) => m.user_id === el.dataset.userId)) el.remove();
  for (const m of members) {
    let el = box.querySelector(`[data-user-id="${CSS.escape(m.user_id)}"]`);
    if (!el) {
      el = document.createElement('div');
      el.className = 'user';
      el.dataset.userId = m.user_id;
      box.append(el);
    }
    const u = userViews.get(m.user_id)?.get();
    const state = u && u.seq ? u.state : m.state;
    el.dataset.state = state;
    const sessions = u?.sessions ? ' · sessions: ' + u.sessions.map((s) => `${s.device || s.session_id}: ${s.state}`).join(', ') : '';
    el.textContent = `${m.user_id}${m.user_id === client.userId ? ' (you)' : ''}: ${state}` +
      (u ? ` · active ${secs(client.ago(u.last_active_at))} · confidence ${(u.confidence ?? 0).toFixed(2)}` : '') + sessions;
    // Users (not guests) may read users: session lists, last active, confidence.
    if (token && !userViews.has(m.user_id)) {
      const v = client.user(m.user_id);
      userViews.set(m.user_id, v);
      v.subscribe(render);
    }
  }
  const c = client.connection.get();
  $('me').textContent = `${c.status}${client.userId ? ' as ' + client.userId : ''}${c.resumed ? ' (resumed)' : ''}`;
  const i = client.intents.get();
  $('intents').textContent = i ? [...i.outgoing.map((x) => `→${x.to_user}: ${x.status}`), ...i.incoming.map((x) => `←${x.from_user}: ${x.status}`)].join(' · ') : '';
}

const yOf = (readiness) => 115 - readiness * 110;

async function drawCurve() {
  try {
    const { samples } = await client.timeline(roomId);
    const xs = samples.slice(-120);
    $('line').setAttribute('points', xs.map((s, k) => `${(k / Math.max(1, xs.length - 1)) * 600},${yOf(s.readiness)}`).join(' '));
    $('curve').dataset.samples = String(xs.length);
    $('curve').dataset.phase = xs.length ? xs.at(-1).phase : '';
  } catch {}
}

// A horizontal line of the curve at `value` (hidden when null); its value is in data-value.
function level(id, value) {
  const el = $(id);
  const y = value == null ? -10 : yOf(value);
  el.setAttribute('y1', y);
  el.setAttribute('y2', y);
  el.dataset.value = value == null ? '' : String(value);
}

const ms = (p) => (p.n ? `${p.p50} / ${p.p90} ms` : '—');
function outcomeRow(name, o) {
  const tr = document.createElement('tr');
  tr.dataset.outcomes = name;
  const share = o.delivered_share == null ? '—' : (o.delivered_share * 100).toFixed(0) + '%';
  for (const text of [name, o.final.accepted, o.final.declined, o.final.expired, o.final.cancelled, share, ms(o.to_delivered_ms), ms(o.to_answer_ms)]) {
    const td = document.createElement('td');
    td.textContent = String(text);
    tr.append(td);
  }
  return tr;
}

// The room's analytics (GET /v1/rooms/{rid}/analytics): threshold and hysteresis
// lines on the curve, the join/leave histogram, intent outcomes (the room's, and
// with a user token the user's own).
async function drawAnalytics() {
  try {
    const bucket = q.get('bucket_ms');
    const a = await client.http('GET', '/v1/rooms/' + encodeURIComponent(roomId) + '/analytics' + (bucket ? '?bucket_ms=' + bucket : ''));
    level('thr-ready', a.thresholds.ready);
    level('thr-cooling', a.thresholds.cooling_below);
    level('thr-start', a.start_when?.readiness_at_least ?? null);
    const sw = a.start_when;
    $('threshold').textContent = sw
      ? [sw.readiness_at_least != null && `readiness ≥ ${sw.readiness_at_least}`,
         sw.active_visible_members_at_least != null && `${sw.active_visible_members_at_least} active members`]
          .filter(Boolean).join(' and ') + ` for ${sw.for_ms} ms: ${a.threshold_holding ? 'holding' : 'not holding'}`
      : 'none';
    $('threshold').dataset.holding = String(a.threshold_holding);
    $('bucket').textContent = a.bucket_ms / 1000 + ' s';
    const bs = a.buckets.slice(-60);
    const top = Math.max(1, ...bs.map((b) => Math.max(b.joins, b.leaves)));
    const w = 600 / 60; // the latest 60 buckets, oldest left
    const bars = $('bars');
    bars.replaceChildren();
    bs.forEach((b, k) => {
      for (const [cls, n, up] of [['bar-join', b.joins, true], ['bar-leave', b.leaves, false]]) {
        if (!n) continue;
        const r = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
        const h = (n / top) * 45;
        r.setAttribute('class', cls);
        r.setAttribute('x', k * w + 1);
        r.setAttribute('width', Math.max(1, w - 2));
        r.setAttribute('y', up ? 50 - h : 50);
        r.setAttribute('height', h);
        r.dataset.t = String(b.t);
        r.dataset.n = String(n);
        bars.append(r);
      }
    });
    const sum = (k) => a.buckets.reduce((s, b) => s + b[k], 0);
    $('histogram').dataset.joins = String(sum('joins'));
    $('histogram').dataset.leaves = String(sum('leaves'));
    const rows = [outcomeRow('into this room', a.intents)];
    if (token && client.userId) {
      const mine = await client.http('GET', '/v1/users/' + encodeURIComponent(client.userId) + '/intents/analytics');
      rows.push(outcomeRow('sent by you', mine.outgoing), outcomeRow('sent to you', mine.incoming));
    }
    $('outcomes').querySelector('tbody').replaceChildren(...rows);
    $('outcomes').dataset.revision = String(a.revision);
  } catch {}
}

room.subscribe(render);
client.connection.subscribe(render);
client.intents.subscribe(render);
setInterval(() => { for (const v of userViews.values()) v.refresh(); render(); }, 3000);
setInterval(drawCurve, 2000);
drawCurve();
setInterval(drawAnalytics, 2000);
drawAnalytics();

$('bg').onclick = () => client.background(true);
$('fg').onclick = () => client.background(false);
$('vanish').onclick = () => client.disconnect();
$('leave').onclick = () => client.leave();
$('intend').onclick = () => client.intend({ to_user: $('to').value, kind: 'call' }).catch((e) => alert(e.message));
const num = (id) => ($(id).value.trim() === '' ? undefined : Number($(id).value));
$('sw-set').onclick = () => {
  const rule = { readiness_at_least: num('sw-readiness'), active_visible_members_at_least: num('sw-members'), for_ms: num('sw-for') };
  client.http('POST', '/v1/rooms/' + encodeURIComponent(roomId) + '/start_when', rule).then(drawAnalytics, (e) => alert(e.message));
};
$('sw-clear').onclick = () =>
  client.http('DELETE', '/v1/rooms/' + encodeURIComponent(roomId) + '/start_when').then(drawAnalytics, (e) => alert(e.message));
window.presenceClient = client;
