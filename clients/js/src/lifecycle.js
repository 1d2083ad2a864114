// Maps the page to signals (see README "Lifecycle mapping"):
// input → active (throttled), no input → idle, hidden → background,
// freeze / resume, pagehide → pending leave, pageshow (bfcache) → resume,
// online / visible / pageshow / resume → reconnect at once.
const INPUT = ['pointerdown', 'pointermove', 'keydown', 'wheel', 'touchstart', 'scroll'];

export function attachLifecycle(client, { window: w, document: d }) {
  const off = [];
  const on = (target, type, f, opts) => {
    if (!target || !target.addEventListener) return;
    target.addEventListener(type, f, opts);
    off.push(() => target.removeEventListener(type, f, opts));
  };
  const hidden = () => d && d.visibilityState === 'hidden';
  const input = () => client.input();
  for (const t of INPUT) on(w, t, input, { capture: true, passive: true });
  on(d, 'visibilitychange', () => client.setHidden(hidden()));
  on(d, 'freeze', () => client.setHidden(true));
  on(d, 'resume', () => {
    client.setHidden(hidden());
    client.wake();
  });
  on(w, 'pagehide', (e) => client.pagehide(!!(e && e.persisted)));
  on(w, 'pageshow', (e) => {
    if (e && e.persisted) client.pageshow(true);
    else client.wake();
  });
  on(w, 'online', () => client.wake());
  client.hidden = hidden();
  if (client.hidden) client.activity = 'background';
  return () => off.forEach((f) => f());
}
