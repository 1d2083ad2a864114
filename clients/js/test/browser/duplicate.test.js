// Headless Chromium: a duplicated tab whose original cannot answer the claim
// (a frozen tab, as a background tab on a phone). The copy finds the session in
// its copy of sessionStorage, nobody answers, and it resumes the original's
// session; the node takes the session over for the copy (one session, one
// socket), and the original opens a session of its own. Closing the copy then
// leaves the original present. Headless Chromium does not freeze a visible page
// (CDP Page.setWebLifecycleState 'frozen' left its timers running), so the
// original's freeze is its channel going deaf.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { startServer, sleep, until, STEADY } from '../helpers/server.js';

const T = 20000;

const sessionOf = (page) => page.evaluate(() => {
  const c = window.presenceClient;
  return c?.status === 'open' ? c.connection.get().session_id : null;
});

test('duplicated tab whose original cannot answer the claim: two sessions, closing one keeps the other', { timeout: 120000 }, async () => {
  const server = await startServer(STEADY);
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const room = 'dup-' + Date.now().toString(36);
    const url = `${server.url}/demo/?room=${room}`;
    const ctx = await browser.newContext();
    const a = await ctx.newPage();
    const errors = [];
    a.on('pageerror', (e) => errors.push(String(e)));
    await a.goto(url);
    const sidA = await until(() => sessionOf(a), 'the original welcomed', T);
    const uid = await a.evaluate(() => window.presenceClient.userId);
    const stored = await a.evaluate(() => Object.entries(sessionStorage));
    // "Freeze" the original: it answers no claim.
    await a.evaluate(() => {
      window.presenceClient.chan.onmessage = null;
    });
    // The duplicate: the same page with a copy of the original's sessionStorage.
    const b = await ctx.newPage();
    b.on('pageerror', (e) => errors.push(String(e)));
    await b.addInitScript((entries) => {
      if (!sessionStorage.length) for (const [k, v] of entries) sessionStorage.setItem(k, v);
    }, stored);
    await b.goto(url);
    await until(async () => (await sessionOf(b)) === sidA, 'the copy resumes the original\'s session', T);
    // The original is told that its session was taken over: it opens its own.
    const sidA2 = await until(async () => {
      const s = await sessionOf(a);
      return s && s !== sidA ? s : null;
    }, 'the original opens a session of its own', T);
    const presence = async () => (await fetch(`${server.url}/v1/users/${encodeURIComponent(uid)}/presence`, {
      headers: { 'X-User': 'watcher' },
    })).json();
    await until(async () => (await presence()).sessions?.length === 2, 'both tabs counted', T);
    // Closing the copy (its pagehide leave ends its session in 3 s) keeps the original.
    await b.close({ runBeforeUnload: true });
    await until(async () => (await presence()).sessions?.length === 1, 'the closed tab gone', T);
    const p = await presence();
    assert.equal(p.sessions[0].session_id, sidA2);
    assert.notEqual(p.state, 'offline');
    await sleep(500);
    assert.equal(await sessionOf(a), sidA2, 'the original kept its own session (no ping-pong)');
    assert.deepEqual(errors, []);
    await ctx.close();
  } finally {
    await browser.close();
    await server.stop();
  }
});
