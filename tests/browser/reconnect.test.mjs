// Connection life cycle: server restart → "reconnecting" → recovery with REST catch-up;
// bounded retries; no reconnect loop after a refused handshake or a logout elsewhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  useFixture,
  HeraldServer,
  adminToken,
  register,
  notify,
  screenshot,
  waitForConn,
  trackSockets,
  badgeCount,
  sleep,
} from './harness.mjs';

const fx = useFixture();

const connText = (page) => page.textContent('#conn-state .conn-text');

test('server restart: the page shows "reconnecting", recovers and catches up', async () => {
  const ivy = await register(fx.server, 'ivy', 'ivy-password-1');
  let token = await adminToken(fx.server);
  await notify(fx.server, token, ivy.id, { title: 'Before the outage' });

  const { page, sockets } = await fx.trackedSignedInPage('ivy', 'ivy-password-1');
  await page.locator('#badge[data-count="1"]').waitFor();
  await page.evaluate(() => {
    window.__noReload = true;
  });
  assert.equal(sockets.length, 1);

  // Outage: the server goes away (close 1001) → "Reconnecting…".
  await fx.server.stop();
  await waitForConn(page, 'reconnecting');
  assert.equal(await connText(page), 'Reconnecting…');
  await screenshot(page, 'reconnecting');

  // While the page's server is down, a notification is created against the same
  // database by another Herald process: no push of it reaches any socket.
  const side = await HeraldServer.start({ dbPath: fx.server.dbPath });
  let missed;
  try {
    const sideToken = await adminToken(side);
    missed = await notify(side, sideToken, ivy.id, { title: 'Created during the outage', notification_type: 'message' });
  } finally {
    await side.stop();
  }
  assert.equal(await page.getAttribute('#conn-state', 'data-state'), 'reconnecting', 'still reconnecting');

  // Back on the same port and database: the page reconnects by itself…
  await fx.server.start();
  await waitForConn(page, 'open', 40000);
  assert.equal(await connText(page), 'Live');
  assert.ok(sockets.length >= 2, 'a new socket was opened');

  // …resuming from the newest ids it had, so the server replays what it missed, without a reload.
  await page.locator(`#notif-list .notif[data-id="${missed.id}"]`).waitFor();
  await page.locator('#badge[data-count="2"]').waitFor();
  assert.equal(await page.evaluate(() => window.__noReload), true, 'no page reload');
  const resumed = sockets.at(-1);
  assert.match(resumed.url, /[?&]last_id=\d+/, `the reconnect says where to resume: ${resumed.url}`);
  const replayed = resumed.received.filter((f) => f.includes('Created during the outage'));
  assert.equal(replayed.length, 1, 'the missed notification was replayed over the socket, once');
  assert.ok(resumed.received.some((f) => f.includes('"type":"sync"')), 'then the sync message');
  await page.locator('#toasts .toast', { hasText: 'Created during the outage' }).waitFor();
  assert.equal(await page.locator(`#notif-list .notif[data-id="${missed.id}"]`).count(), 1, 'listed once');

  // Live pushes work again on the new socket.
  token = await adminToken(fx.server);
  await notify(fx.server, token, ivy.id, { title: 'After the outage' });
  await page.locator('#toasts .toast', { hasText: 'After the outage' }).waitFor();
  await page.locator('#badge[data-count="3"]').waitFor();
  const titles = await page.locator('#notif-list .notif-title').allTextContents();
  assert.deepEqual(titles, ['After the outage', 'Created during the outage', 'Before the outage']);
  await screenshot(page, 'reconnected');
});

test('gives up after the configured number of attempts, and Retry works', async () => {
  await register(fx.server, 'jon', 'jon-password-1');
  const { page, sockets } = await fx.trackedSignedInPage('jon', 'jon-password-1', {
    heraldConfig: { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 400 },
  });
  assert.equal(sockets.length, 1);

  await fx.server.stop();
  await waitForConn(page, 'closed', 15000);
  assert.match(await connText(page), /Offline/);
  assert.equal(await page.locator('#conn-retry').isVisible(), true);
  const attempts = sockets.length - 1;
  assert.equal(attempts, 3, `exactly maxAttempts reconnect attempts (saw ${attempts})`);
  await sleep(1500);
  assert.equal(sockets.length - 1, 3, 'no attempt after giving up');
  await screenshot(page, 'gave-up');

  await fx.server.start();
  await page.click('#conn-retry');
  await waitForConn(page, 'open');
  assert.equal(await page.locator('#conn-retry').isVisible(), false);
});

test('a refused handshake (session gone) stops reconnecting and shows the sign-in form', async () => {
  await register(fx.server, 'kim', 'kim-password-1');
  const ctx = await fx.context();
  const { page, sockets } = await fx.trackedSignedInPage('kim', 'kim-password-1', {
    context: ctx,
    heraldConfig: { baseDelayMs: 200, maxDelayMs: 800 },
  });

  // The server goes down; the browser loses its session cookie meanwhile; the server returns.
  await fx.server.stop();
  await waitForConn(page, 'reconnecting');
  await ctx.clearCookies({ name: 'sessionid' });
  await fx.server.start();

  // The next handshake is refused (401): the page asks /api/auth/me/, gets 401, stops.
  await page.locator('#signin-form').waitFor({ timeout: 15000 });
  await waitForConn(page, 'closed');
  assert.equal(await connText(page), 'Signed out');
  const count = sockets.length;
  assert.ok(count >= 2 && count <= 1 + 5, `a bounded number of attempts (${count})`);
  await sleep(3000);
  assert.equal(sockets.length, count, 'no further WebSocket attempts after the refusal');
  assert.equal(await page.locator('#bell').isVisible(), false);
  await screenshot(page, 'refused-handshake');
});

test('logout in another tab closes the socket (4001) without a reconnect loop', async () => {
  const lee = await register(fx.server, 'lee', 'lee-password-1');
  const ctx = await fx.context();
  const pageA = await fx.signedInPage('lee', 'lee-password-1', { context: ctx });
  const socketsA = trackSockets(pageA);
  // Reload so that A's socket is tracked from the start.
  await pageA.reload();
  await waitForConn(pageA, 'open');
  assert.equal(socketsA.length, 1);

  const pageB = await ctx.newPage();
  await pageB.goto(fx.server.url('/'));
  await waitForConn(pageB, 'open');
  await pageB.click('#logout');
  await pageB.locator('#signin-form').waitFor();

  // Tab A learns at once (close 4001), shows the sign-in form and does not reconnect.
  await pageA.locator('#signin-form').waitFor({ timeout: 10000 });
  assert.equal(await connText(pageA), 'Signed out');
  assert.match(await pageA.textContent('#flash'), /signed out/i);
  await sleep(2500);
  assert.equal(socketsA.length, 1, `no reconnect attempt after 4001 (saw ${socketsA.length} sockets)`);
  assert.equal(await badgeCount(pageA), 0);

  // A notification for lee now reaches nobody's page.
  const token = await adminToken(fx.server);
  await notify(fx.server, token, lee.id, { title: 'Nobody is listening' });
  await sleep(500);
  assert.equal(await pageA.locator('#toasts .toast', { hasText: 'Nobody is listening' }).count(), 0);
  await screenshot(pageA, 'logout-elsewhere');
});
