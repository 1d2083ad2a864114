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

async function drawCurve() {
  try {
    const { samples } = await client.timeline(roomId);
    const xs = samples.slice(-120);
    $('line').setAttribute('points', xs.map((s, k) => `${(k / Math.max(1, xs.length - 1)) * 600},${115 - s.readiness * 110}`).join(' '));
    $('curve').dataset.samples = String(xs.length);
    $('curve').dataset.phase = xs.length ? xs.at(-1).phase : '';
  } catch {}
}

room.subscribe(render);
client.connection.subscribe(render);
client.intents.subscribe(render);
setInterval(() => { for (const v of userViews.values()) v.refresh(); render(); }, 3000);
setInterval(drawCurve, 2000);
drawCurve();

$('bg').onclick = () => client.background(true);
$('fg').onclick = () => client.background(false);
$('vanish').onclick = () => client.disconnect();
$('leave').onclick = () => client.leave();
$('intend').onclick = () => client.intend({ to_user: $('to').value, kind: 'call' }).catch((e) => alert(e.message));
window.presenceClient = client;
