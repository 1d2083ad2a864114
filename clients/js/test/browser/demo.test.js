// Headless Chromium against the demo page served by the gateway at /demo/:
// two guests see each other active, a hidden page goes away, a closed page leaves
// (and does not flap back), and the readiness curve is drawn.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer, sleep, STEADY } from '../helpers/server.js';

const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test-output');
const T = 20000;

const myId = (page) => page.waitForFunction(() => window.presenceClient?.userId, null, { timeout: T }).then((h) => h.jsonValue());
const stateOf = (page, uid) =>
  page.evaluate((u) => document.querySelector(`[data-user-id="${CSS.escape(u)}"]`)?.dataset.state ?? null, uid);
const waitState = (page, uid, states) =>
  page.waitForFunction(
    ([u, ss]) => ss.includes(document.querySelector(`[data-user-id="${CSS.escape(u)}"]`)?.dataset.state ?? null),
    [uid, states], { timeout: T, polling: 100 });

test('demo page: two guests, away, leave, readiness curve', { timeout: 120000 }, async () => {
  mkdirSync(OUT, { recursive: true });
  // STEADY: a page without input stays active for the whole test.
  const server = await startServer(STEADY);
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const room = 'browser-' + Date.now().toString(36) + Math.random().toString(36).slice(2, 6);
    const url = `${server.url}/demo/?room=${room}`;
    const ctxA = await browser.newContext();
    const ctxB = await browser.newContext();
    const a = await ctxA.newPage();
    const b = await ctxB.newPage();
    const errors = [];
    for (const p of [a, b]) p.on('pageerror', (e) => errors.push(String(e)));
    const ra = await a.goto(url);
    assert.equal(ra.status(), 200, 'GET /demo/ ' + ra.status());
    await b.goto(url);
    const idA = await myId(a);
    const idB = await myId(b);
    assert.notEqual(idA, idB);

    // each sees the other active
    await waitState(a, idB, ['active']);
    await waitState(b, idA, ['active']);
    await a.screenshot({ path: join(OUT, 'demo-both-active.png') });

    // readiness curve drawn
    await a.waitForFunction(() => Number(document.getElementById('curve').dataset.samples || 0) > 0 &&
      document.getElementById('line').getAttribute('points').trim().length > 0, null, { timeout: T });

    // B hidden -> A sees B away
    await b.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await waitState(a, idB, ['away']);
    await a.screenshot({ path: join(OUT, 'demo-away.png') });

    // B closed -> A sees B gone (removed or offline), and no flap back to active
    await b.close({ runBeforeUnload: true });
    await ctxB.close();
    await a.waitForFunction((u) => {
      const el = document.querySelector(`[data-user-id="${CSS.escape(u)}"]`);
      return !el || el.dataset.state === 'offline';
    }, idB, { timeout: T, polling: 100 });
    for (let end = Date.now() + 4000; Date.now() < end; ) {
      const s = await stateOf(a, idB);
      assert.ok(s === null || s === 'offline', 'flapped back to ' + s);
      await sleep(200);
    }
    await a.screenshot({ path: join(OUT, 'demo-left.png') });
    assert.deepEqual(errors, []);
    await ctxA.close();
  } finally {
    await browser.close();
    await server.stop();
  }
});
