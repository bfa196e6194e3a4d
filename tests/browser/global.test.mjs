// Global announcements reach every open tab, coloured by level, and show as a banner.
import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { fixture, adminToken, register, announce, screenshot, waitForConn, waitUntil, api } from './harness.mjs';

const fx = fixture();
before(fx.launch);
after(fx.close);
beforeEach(fx.setup);
afterEach(fx.teardown);

const COLOURS = {
  info: 'rgb(232, 240, 254)',
  warning: 'rgb(255, 246, 214)',
  danger: 'rgb(253, 232, 230)',
};

test('a global announcement appears in every open tab, coloured by level', async () => {
  await register(fx.server, 'fay', 'fay-password-1');
  await register(fx.server, 'gus', 'gus-password-1', 'employer');
  const token = await adminToken(fx.server);

  // fay in two tabs of one browser profile, gus in another profile.
  const ctxFay = await fx.context();
  const fay1 = await fx.signedInPage('fay', 'fay-password-1', { context: ctxFay });
  const fay2 = await ctxFay.newPage();
  await fay2.goto(fx.server.url('/'));
  await waitForConn(fay2, 'open');
  const gus = await fx.signedInPage('gus', 'gus-password-1');
  const pages = [fay1, fay2, gus];
  for (const p of pages) assert.equal(await p.locator('.announcement').count(), 0);

  const warning = await announce(fx.server, token, { title: 'Maintenance tonight', message: 'Read-only from 22:00 UTC', level: 'warning' });
  const danger = await announce(fx.server, token, { title: 'Incident', message: 'Logins are degraded', level: 'danger' });

  for (const p of pages) {
    for (const [g, level] of [
      [warning, 'warning'],
      [danger, 'danger'],
    ]) {
      const toast = p.locator(`#toasts .toast[data-kind="global"][data-level="${level}"]`, { hasText: g.title });
      await toast.waitFor();
      assert.equal(await toast.evaluate((e) => getComputedStyle(e).backgroundColor), COLOURS[level], `${level} toast colour`);
      const banner = p.locator(`#announcements .announcement[data-id="${g.id}"]`);
      await banner.waitFor();
      assert.equal(await banner.getAttribute('data-level'), level);
      assert.equal(await banner.evaluate((e) => getComputedStyle(e).backgroundColor), COLOURS[level], `${level} banner colour`);
    }
    // Newest announcement first.
    assert.equal(Number(await p.locator('#announcements .announcement').first().getAttribute('data-id')), danger.id);
  }
  // The danger banner is announced assertively.
  assert.equal(await fay1.locator(`.announcement[data-id="${danger.id}"]`).getAttribute('role'), 'alert');
  await screenshot(gus, 'global-announcement');

  // An info one, then a reload: the banner comes from GET /api/global-notifications/.
  const info = await announce(fx.server, token, { title: 'New feature', message: 'Dark mode is coming', level: 'info' });
  const infoToast = fay2.locator('#toasts .toast[data-level="info"]', { hasText: 'New feature' });
  await infoToast.waitFor();
  assert.equal(await infoToast.evaluate((e) => getComputedStyle(e).backgroundColor), COLOURS.info);
  await fay1.reload();
  await fay1.locator(`#announcements .announcement[data-id="${info.id}"]`).waitFor();
  assert.equal(await fay1.locator('#announcements .announcement').count(), 3);

  // A signed-out visitor sees the banner too (the list endpoint needs no auth), without a socket.
  const visitorCtx = await fx.context();
  const visitor = await visitorCtx.newPage();
  let sockets = 0;
  visitor.on('websocket', () => sockets++);
  await visitor.goto(fx.server.url('/'));
  await visitor.locator(`#announcements .announcement[data-id="${warning.id}"]`).waitFor();
  await visitor.locator('#signin-form').waitFor();
  assert.equal(sockets, 0, 'no WebSocket for a signed-out visitor');

  // Dismissing hides it locally only.
  await fay1.click(`.announcement[data-id="${warning.id}"] .announcement-close`);
  assert.equal(await fay1.locator(`.announcement[data-id="${warning.id}"]`).count(), 0);
  const still = await api(fx.server, '/api/global-notifications/');
  assert.ok(still.body.notifications.some((g) => g.id === warning.id));
});

test('announcements that are inactive, off-site or expired are not shown', async () => {
  await register(fx.server, 'hal', 'hal-password-1');
  const token = await adminToken(fx.server);
  const page = await fx.signedInPage('hal', 'hal-password-1');

  await announce(fx.server, token, { title: 'Inactive one', is_active: false });
  await announce(fx.server, token, { title: 'Off-site one', show_on_site: false });
  const past = new Date(Date.now() - 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  await announce(fx.server, token, { title: 'Expired one', expires_at: past });
  const soon = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const live = await announce(fx.server, token, { title: 'Current one', expires_at: soon, level: 'warning' });

  await page.locator(`#announcements .announcement[data-id="${live.id}"]`).waitFor();
  assert.match(await page.locator(`.announcement[data-id="${live.id}"]`).textContent(), /until/);
  const toasts = await page.locator('#toasts .toast').allTextContents();
  assert.ok(toasts.some((t) => /Current one/.test(t)), `a toast for the current one: ${toasts}`);
  assert.ok(!toasts.some((t) => /Inactive one|Off-site one|Expired one/.test(t)), `no toast for hidden announcements: ${toasts}`);
  assert.equal(await page.locator('#announcements .announcement').count(), 1);
  await page.reload();
  await page.locator(`#announcements .announcement[data-id="${live.id}"]`).waitFor();
  const titles = await page.locator('#announcements .announcement-title').allTextContents();
  assert.deepEqual(titles, ['Current one']);
  await screenshot(page, 'global-filtered');
});

test('an announcement pushed while the list is loading stays when the older list arrives', async () => {
  await register(fx.server, 'ida', 'ida-password-1');
  const token = await adminToken(fx.server);

  // Every list request is answered as it stood when asked, but only once the gate opens: the
  // page connects, asks for the list, and the announcement's push overtakes the answer.
  let openGate;
  const gate = new Promise((resolve) => (openGate = resolve));
  let held = 0;
  let answered = 0;
  const ctx = await fx.context();
  await ctx.route('**/api/global-notifications/', async (route) => {
    if (route.request().method() !== 'GET') return route.continue();
    held++;
    const response = await route.fetch();
    await gate;
    await route.fulfill({ response });
    answered++;
  });
  const page = await fx.signedInPage('ida', 'ida-password-1', { context: ctx });

  const live = await announce(fx.server, token, { title: 'Overtaking one' });
  const banner = page.locator(`#announcements .announcement[data-id="${live.id}"]`);
  await banner.waitFor();
  assert.ok(held > 0, 'the list was requested on connect');

  openGate();
  await waitUntil(() => answered === held, { message: 'the held list answers' });
  // Let the page apply the older list; the pushed announcement must survive it.
  await page.waitForTimeout(500);
  assert.equal(await banner.count(), 1, 'the pushed announcement is still shown');
});
