// The notification page: sign-in/register, live toasts + badge + list, mark-read,
// browser notifications, keyboard and phone-width use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  useFixture,
  adminToken,
  register,
  login,
  notify,
  announce,
  api,
  screenshot,
  stubBrowserNotifications,
  signInViaForm,
  waitForConn,
  badgeCount,
  waitUntil,
} from './harness.mjs';

const fx = useFixture();

test('register, sign out and sign in through the forms', async () => {
  const ctx = await fx.context();
  const page = await ctx.newPage();
  await stubBrowserNotifications(page);
  await page.goto(fx.server.url('/'));

  // Signed out: the forms, no bell, no socket.
  await page.locator('#signin-form').waitFor();
  assert.equal(await page.locator('#bell').isVisible(), false, 'no bell while signed out');

  // Register (the page signs the new account in).
  await page.click('#tab-register');
  await page.fill('#register-username', 'ada');
  await page.fill('#register-password', 'short');
  await page.click('#register-form button[type=submit]');
  await page.locator('#register-error').waitFor();
  assert.match(await page.textContent('#register-error'), /8 characters/);
  await page.fill('#register-password', 'lovelace-123');
  await page.check('input[name=role][value=employer]');
  await page.click('#register-form button[type=submit]');
  await page.locator('#notif-panel').waitFor();
  await waitForConn(page, 'open');
  assert.equal(await page.textContent('#user-name'), 'ada');
  assert.equal(await page.textContent('#user-role'), 'employer');
  assert.equal(await page.locator('#admin-link').isVisible(), false, 'no admin link for an employer');
  // The empty state follows the list request, which may answer after the socket opens.
  await page.locator('#notif-empty').waitFor({ state: 'visible', timeout: 5000 });
  assert.equal(await page.locator('#notif-empty').isVisible(), true);
  assert.equal(await page.textContent('#conn-state .conn-text'), 'Live');

  // The server agrees the account exists with that role.
  const { user } = await login(fx.server, 'ada', 'lovelace-123');
  assert.equal(user.role, 'employer');

  // Never asks for notification permission on its own.
  assert.equal(await page.evaluate(() => window.__notifications.requests()), 0);

  // Sign out → forms again; the session is gone server-side too.
  await page.click('#logout');
  await page.locator('#signin-form').waitFor();
  assert.equal(await page.evaluate(() => fetch('/api/auth/me/').then((r) => r.status)), 401);

  // Wrong password → an error, still signed out.
  await page.fill('#signin-username', 'ada');
  await page.fill('#signin-password', 'wrong-password');
  await page.click('#signin-form button[type=submit]');
  await page.locator('#signin-error').waitFor();
  assert.match(await page.textContent('#signin-error'), /wrong/i);

  // Right password → signed in, live.
  await signInViaForm(page, 'ada', 'lovelace-123');
  assert.equal(await page.evaluate(() => fetch('/api/auth/me/').then((r) => r.json()).then((u) => u.username)), 'ada');
  await screenshot(page, 'signin-signed-in');
});

test('a notification created by an admin appears live: toast, badge and list', async () => {
  const bob = await register(fx.server, 'bob', 'bob-password-1');
  const token = await adminToken(fx.server);
  // One older notification, loaded over REST.
  await notify(fx.server, token, bob.id, { title: 'Welcome aboard', message: 'Glad you are here', notification_type: 'system' });

  const ctx = await fx.context();
  const page = await ctx.newPage();
  await stubBrowserNotifications(page);
  await page.goto(fx.server.url('/'));
  await signInViaForm(page, 'bob', 'bob-password-1');
  await page.locator('#notif-list .notif[data-id]').first().waitFor();
  assert.equal(await badgeCount(page), 1);
  await page.evaluate(() => {
    window.__noReload = true;
  });
  const bellBox = await page.locator('#bell').boundingBox();
  const badgeBox = await page.locator('#badge').boundingBox();

  // Browser notifications: asked from the button, not before.
  assert.equal(await page.evaluate(() => window.__notifications.requests()), 0);
  await page.click('#enable-browser-notifs');
  await page.locator('#browser-notifs-state', { hasText: 'on' }).waitFor();
  assert.equal(await page.evaluate(() => window.__notifications.requests()), 1);

  const n = await notify(fx.server, token, bob.id, {
    title: 'New job application',
    message: 'Someone applied to your job posting',
    notification_type: 'job_application',
    link: '/employers/applicants/',
  });

  // Toast in the aria-live region.
  const toast = page.locator('#toasts .toast', { hasText: 'New job application' });
  await toast.waitFor();
  assert.equal(await page.getAttribute('#toasts', 'aria-live'), 'polite');
  assert.match(await toast.textContent(), /Someone applied to your job posting/);

  // Badge 1 → 2, accessible label follows; the list has it on top.
  await page.locator('#badge[data-count="2"]').waitFor();
  assert.equal(await page.textContent('#badge'), '2');
  assert.equal(await page.getAttribute('#bell', 'aria-label'), 'Notifications, 2 unread');
  const firstId = await page.locator('#notif-list .notif').first().getAttribute('data-id');
  assert.equal(Number(firstId), n.id, 'newest first');
  const first = page.locator('#notif-list .notif').first();
  assert.match(await first.textContent(), /New job application/);
  assert.equal(await first.locator('a.notif-title').getAttribute('href'), '/employers/applicants/');
  assert.equal(await page.locator('#notif-list .notif').count(), 2);

  // A browser notification was shown for it.
  const shown = await page.evaluate(() => window.__notifications.shown);
  assert.deepEqual(
    shown.map((s) => s.title),
    ['New job application'],
  );

  // No reload happened, and the badge did not move the bell.
  assert.equal(await page.evaluate(() => window.__noReload), true);
  assert.deepEqual(await page.locator('#bell').boundingBox(), bellBox, 'bell does not move');
  const badgeNow = await page.locator('#badge').boundingBox();
  assert.equal(badgeNow.width, badgeBox.width, 'badge keeps its width');

  // Someone else's notification does not reach bob.
  const carol = await register(fx.server, 'carol', 'carol-password-1');
  await notify(fx.server, token, carol.id, { title: 'For carol only' });
  await notify(fx.server, token, bob.id, { title: 'Your profile was viewed', message: 'A recruiter from Globex looked at your profile', notification_type: 'profile_view' });
  await page.locator('#badge[data-count="3"]').waitFor();
  assert.equal(await page.locator('#notif-list .notif', { hasText: 'For carol only' }).count(), 0);
  assert.equal(await page.locator('#toasts .toast', { hasText: 'For carol only' }).count(), 0);

  await screenshot(page, 'live-notification');
});

test('mark-read and mark-all-read update the badge in every tab', async () => {
  const dee = await register(fx.server, 'dee', 'dee-password-1');
  const token = await adminToken(fx.server);
  const ids = [];
  for (const title of ['First', 'Second', 'Third']) ids.push((await notify(fx.server, token, dee.id, { title })).id);

  const ctx = await fx.context();
  const pageA = await fx.signedInPage('dee', 'dee-password-1', { context: ctx });
  const pageB = await ctx.newPage();
  await pageB.goto(fx.server.url('/'));
  await pageB.locator('#notif-panel').waitFor();
  await waitForConn(pageB, 'open');
  for (const p of [pageA, pageB]) await p.locator('#badge[data-count="3"]').waitFor();

  // Mark "Second" read in tab A → both tabs show 2.
  const second = pageA.locator(`#notif-list .notif[data-id="${ids[1]}"]`);
  await second.locator('button.mark-read').click();
  for (const p of [pageA, pageB]) {
    await p.locator('#badge[data-count="2"]').waitFor();
    await p.locator(`#notif-list .notif.is-read[data-id="${ids[1]}"]`).waitFor();
  }
  assert.equal(await pageB.locator('#notif-list .notif.is-unread').count(), 2);
  const me = await login(fx.server, 'dee', 'dee-password-1');
  let list = await api(fx.server, '/api/notifications/', { token: me.token });
  assert.equal(list.body.unread_count, 2);
  assert.equal(list.body.notifications.find((x) => x.id === ids[1]).is_read, true);

  // Mark all read in tab B → both tabs show 0 (badge hidden but still in place).
  await pageB.click('#mark-all-read');
  for (const p of [pageA, pageB]) {
    await p.locator('#badge[data-count="0"]').waitFor({ state: 'attached' });
    await waitUntil(async () => (await p.locator('#notif-list .notif.is-unread').count()) === 0, { message: 'no unread items' });
  }
  assert.equal(await pageA.locator('#badge').isVisible(), false);
  assert.equal(await pageA.isDisabled('#mark-all-read'), true);
  list = await api(fx.server, '/api/notifications/', { token: me.token });
  assert.equal(list.body.unread_count, 0);
  await screenshot(pageA, 'mark-all-read');
});

test('keyboard and phone-width use', async () => {
  const eve = await register(fx.server, 'eve', 'eve-password-1');
  const token = await adminToken(fx.server);
  await announce(fx.server, token, { title: 'Heads up', message: 'A rather long announcement text that has to wrap nicely on a narrow phone screen.', level: 'info' });
  for (const title of ['Profile viewed', 'A new connection request with a long title that wraps']) {
    await notify(fx.server, token, eve.id, { title, notification_type: title.startsWith('Profile') ? 'profile_view' : 'connection' });
  }
  const ctx = await fx.context({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
  const page = await fx.signedInPage('eve', 'eve-password-1', { context: ctx });
  await page.locator('#badge[data-count="2"]').waitFor();
  await page.locator('.announcement', { hasText: 'Heads up' }).waitFor();

  // Nothing overflows sideways; the bell is on screen.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `horizontal overflow of ${overflow}px`);
  const bell = await page.locator('#bell').boundingBox();
  assert.ok(bell && bell.x >= 0 && bell.x + bell.width <= 375, `bell inside the viewport: ${JSON.stringify(bell)}`);

  // Tab to the first "Mark read" button and press Enter.
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  let reached = false;
  for (let i = 0; i < 40 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement?.classList.contains('mark-read'));
  }
  assert.ok(reached, 'a Mark read button is reachable with Tab');
  await page.keyboard.press('Enter');
  await page.locator('#badge[data-count="1"]').waitFor();
  await screenshot(page, 'phone-width');
});
