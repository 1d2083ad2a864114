// Headless Chromium against the demo page's room analytics (issue 14): the
// readiness curve carries the ready-threshold and hysteresis lines (and the
// start_when line once a rule is set), the join/leave histogram counts the two
// guests' joins, and the intent outcomes table is filled; with a user token the
// page also shows the user's own outcomes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer, token } from '../helpers/server.js';

const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test-output');
const T = 20000;

const myId = (page) => page.waitForFunction(() => window.presenceClient?.userId, null, { timeout: T }).then((h) => h.jsonValue());
const attr = (page, id, name) => page.evaluate(([i, n]) => document.getElementById(i)?.dataset[n] ?? null, [id, name]);

test('demo page: readiness thresholds, join/leave histogram, intent outcomes', { timeout: 120000 }, async () => {
  mkdirSync(OUT, { recursive: true });
  const server = await startServer(['--rooms.analytics_bucket_ms=1000']);
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const room = 'analytics-' + Date.now().toString(36) + Math.random().toString(36).slice(2, 6);
    const url = `${server.url}/demo/?room=${room}`;
    const ctxA = await browser.newContext();
    const ctxB = await browser.newContext();
    const a = await ctxA.newPage();
    const b = await ctxB.newPage();
    const errors = [];
    for (const p of [a, b]) p.on('pageerror', (e) => errors.push(String(e)));
    // b is a user (a token in the hash): it may set start_when and reads its own outcomes.
    await a.goto(url);
    await b.goto(`${url}#token=${token('bob')}`);
    await myId(a);
    assert.equal(await myId(b), 'bob');

    // threshold and hysteresis lines at the server's defaults (0.6 and 0.6 - 0.1)
    await a.waitForFunction(() => document.getElementById('thr-ready').dataset.value === '0.6', null, { timeout: T });
    assert.equal(Number(await attr(a, 'thr-cooling', 'value')).toFixed(2), '0.50');
    assert.equal(await attr(a, 'thr-start', 'value'), '', 'no start_when line yet');
    const y = await a.evaluate(() => Number(document.getElementById('thr-ready').getAttribute('y1')));
    assert.equal(y, 115 - 0.6 * 110);

    // both joins in the histogram, drawn as bars
    await a.waitForFunction(() => Number(document.getElementById('histogram').dataset.joins || 0) >= 2, null, { timeout: T });
    const bars = await a.evaluate(() => document.querySelectorAll('#bars .bar-join').length);
    assert.ok(bars >= 1, 'join bars drawn: ' + bars);

    // intent outcomes: the room's row for a guest; the room's and the user's own for bob
    await a.waitForFunction(() => document.querySelectorAll('#outcomes [data-outcomes]').length === 1, null, { timeout: T });
    await b.waitForFunction(() => document.querySelectorAll('#outcomes [data-outcomes]').length === 3, null, { timeout: T });

    // bob sets start_when (readiness 0.25 for 200 ms): the line appears, and the two
    // members hold it whether the pages count as active or idle (0.9, 0.6 or 0.3)
    await b.fill('#sw-readiness', '0.25');
    await b.fill('#sw-for', '200');
    await b.click('#sw-set');
    await a.waitForFunction(() => document.getElementById('thr-start').dataset.value === '0.25', null, { timeout: T });
    await a.waitForFunction(() => document.getElementById('threshold').dataset.holding === 'true', null, { timeout: T });
    await a.screenshot({ path: join(OUT, 'demo-analytics.png') });
    assert.deepEqual(errors, []);
    await ctxA.close();
    await ctxB.close();
  } finally {
    await browser.close();
    await server.stop();
  }
});
