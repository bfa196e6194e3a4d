// The admin page: role gate, sending to one user or a role, publishing, editing, deactivating and
// deleting announcements (seen live on a user's page).
import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { fixture, ADMIN, adminToken, register, announce, api, login, screenshot, waitForConn } from './harness.mjs';

const fx = fixture();
before(fx.launch);
after(fx.close);
beforeEach(fx.setup);
afterEach(fx.teardown);

async function adminSignIn(page) {
  await page.goto(fx.server.url('/admin/'));
  await page.locator('#signin-form').waitFor();
  await page.fill('#signin-username', ADMIN.username);
  await page.fill('#signin-password', ADMIN.password);
  await page.click('#signin-form button[type=submit]');
  await page.locator('#console').waitFor();
}

test('non-admins get a clear message instead of the console', async () => {
  await register(fx.server, 'max', 'max-password-1', 'employer');
  const page = await fx.signedInPage('max', 'max-password-1');
  assert.equal(await page.locator('#admin-link').isVisible(), false);
  await page.goto(fx.server.url('/admin/'));
  await page.locator('#forbidden').waitFor();
  assert.match(await page.textContent('#forbidden'), /Administrators only/);
  assert.match(await page.textContent('#forbidden'), /max/);
  assert.equal(await page.locator('#console').isVisible(), false);
  assert.equal(await page.locator('#send-form').isVisible(), false);
  // And the API agrees.
  const status = await page.evaluate(() => fetch('/api/admin/users/').then((r) => r.status));
  assert.equal(status, 403);
  await screenshot(page, 'admin-forbidden');

  // Signed out: the admin sign-in form.
  const anon = await (await fx.context()).newPage();
  await anon.goto(fx.server.url('/admin/'));
  await anon.locator('#signin-form').waitFor();
  assert.equal(await anon.locator('#console').isVisible(), false);
});

test('an admin sends a notification and publishes, then deactivates, an announcement', async () => {
  const nia = await register(fx.server, 'nia', 'nia-password-1');
  await register(fx.server, 'ozzy', 'ozzy-password-1', 'employer');
  const token = await adminToken(fx.server);
  const old = await announce(fx.server, token, { title: 'Old news', level: 'info' });

  // nia is watching her notifications page.
  const user = await fx.signedInPage('nia', 'nia-password-1');
  await user.locator(`.announcement[data-id="${old.id}"]`).waitFor();

  const adminCtx = await fx.context({ viewport: { width: 1200, height: 1000 } });
  const admin = await adminCtx.newPage();
  await adminSignIn(admin);
  // Users list: every account, by id.
  await admin.locator(`#send-user option[value="${nia.id}"]`).waitFor({ state: 'attached' });
  const options = await admin.locator('#send-user option').allTextContents();
  assert.ok(options.some((o) => o.startsWith('ozzy (employer)')), `users listed: ${options}`);
  const types = await admin.locator('#send-type option').evaluateAll((os) => os.map((o) => o.value).sort());
  assert.deepEqual(types, ['connection', 'job_application', 'job_post', 'message', 'post_like', 'profile_view', 'system']);

  // Send a message notification to nia.
  await admin.selectOption('#send-user', String(nia.id));
  await admin.selectOption('#send-type', 'message');
  await admin.fill('#send-title-input', 'You have a new message');
  await admin.fill('#send-message', 'An employer wrote to you');
  await admin.fill('#send-link', '/messages/');
  await admin.click('#send-form button[type=submit]');
  await admin.locator('#send-status', { hasText: 'Sent' }).waitFor();
  assert.match(await admin.textContent('#send-status'), /nia/);

  await user.locator('#toasts .toast', { hasText: 'You have a new message' }).waitFor();
  await user.locator('#badge[data-count="1"]').waitFor();
  const item = user.locator('#notif-list .notif').first();
  assert.equal(await item.getAttribute('data-type'), 'message');
  assert.equal(await item.locator('a.notif-title').getAttribute('href'), '/messages/');
  const list = await api(fx.server, '/api/notifications/', { token: (await api(fx.server, '/api/auth/login/', { method: 'POST', body: { username: 'nia', password: 'nia-password-1' } })).body.token });
  assert.equal(list.body.notifications[0].title, 'You have a new message');
  assert.equal(list.body.notifications[0].notification_type, 'message');
  assert.equal(list.body.notifications[0].link, '/messages/');

  // A form error is shown, not swallowed: no recipient chosen.
  await admin.selectOption('#send-user', '');
  await admin.fill('#send-title-input', 'x');
  await admin.fill('#send-message', 'y');
  await admin.click('#send-form button[type=submit]');
  await admin.locator('#send-error', { hasText: 'recipient' }).waitFor();

  // Publish a danger announcement with an expiry.
  await admin.fill('#publish-title-input', 'Security update');
  await admin.fill('#publish-message', 'Please change your password');
  await admin.check('input[name=level][value=danger]');
  const tomorrow = new Date(Date.now() + 24 * 3600_000);
  const local = new Date(tomorrow.getTime() - tomorrow.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  await admin.fill('#publish-expires', local);
  await admin.click('#publish-form button[type=submit]');
  await admin.locator('#publish-status', { hasText: 'Published' }).waitFor();

  const banner = user.locator('#announcements .announcement', { hasText: 'Security update' });
  await banner.waitFor();
  assert.equal(await banner.getAttribute('data-level'), 'danger');
  await user.locator('#toasts .toast[data-level="danger"]', { hasText: 'Security update' }).waitFor();

  const row = admin.locator('#globals-body tr', { hasText: 'Security update' });
  await row.waitFor();
  assert.equal(await row.getAttribute('data-status'), 'active');
  const id = Number(await row.getAttribute('data-id'));
  let active = await api(fx.server, '/api/global-notifications/');
  const created = active.body.notifications.find((g) => g.id === id);
  assert.ok(created, 'the announcement is listed as active');
  assert.equal(created.level, 'danger');
  assert.ok(created.expires_at && Math.abs(Date.parse(created.expires_at) - tomorrow.getTime()) < 120_000, `expiry kept: ${created.expires_at}`);
  assert.equal(await admin.locator('#globals-body tr').count(), 2, 'all announcements listed');
  await screenshot(admin, 'admin-console', { fullPage: true });

  // Deactivate it.
  await row.locator('button.deactivate').click();
  await admin.locator(`#globals-body tr[data-id="${id}"][data-status="inactive"]`).waitFor();
  assert.equal(await admin.locator(`#globals-body tr[data-id="${id}"] button.deactivate`).count(), 0);
  active = await api(fx.server, '/api/global-notifications/');
  assert.ok(!active.body.notifications.some((g) => g.id === id), 'no longer served as active');
  const all = await api(fx.server, '/api/admin/global-notifications/', { token });
  assert.equal(all.body.notifications.find((g) => g.id === id).is_active, false);

  // After a reload (fresh page state) the admin still sees it as inactive, and users no longer get the banner.
  await admin.reload();
  await admin.locator(`#globals-body tr[data-id="${id}"][data-status="inactive"]`).waitFor();
  await user.reload();
  await waitForConn(user, 'open');
  await user.locator(`.announcement[data-id="${old.id}"]`).waitFor();
  assert.equal(await user.locator('#announcements .announcement', { hasText: 'Security update' }).count(), 0);
  await screenshot(admin, 'admin-deactivated', { fullPage: true });
});

test('an admin notifies a role after a confirmation, edits a live announcement and deletes it', async () => {
  await register(fx.server, 'pia', 'pia-password-1');
  await register(fx.server, 'emma', 'emma-password-1', 'employer');
  await register(fx.server, 'eric', 'eric-password-1', 'employer');
  const token = await adminToken(fx.server);
  const g = await announce(fx.server, token, { title: 'Maintenance at 22:00', message: 'Back soon', level: 'warning' });

  const pia = await fx.signedInPage('pia', 'pia-password-1');
  await waitForConn(pia, 'open');
  const emma = await fx.signedInPage('emma', 'emma-password-1');
  await waitForConn(emma, 'open');
  const banner = pia.locator(`#announcements .announcement[data-id="${g.id}"]`);
  await banner.waitFor();

  const admin = await (await fx.context({ viewport: { width: 1200, height: 1000 } })).newPage();
  await adminSignIn(admin);

  // To every employer: the page says how many will receive it before sending.
  await admin.check('input[name=target][value=role]');
  await admin.selectOption('#send-role', 'employer');
  await admin.fill('#send-title-input', 'New job fair');
  await admin.fill('#send-message', 'Book your stand');
  await admin.click('#send-submit');
  await admin.locator('#send-confirm').waitFor();
  assert.match(await admin.textContent('#send-confirm-text'), /every employer/);
  assert.match(await admin.textContent('#send-confirm-text'), /2 people will receive it/);
  await screenshot(admin, 'admin-bulk-confirm', { fullPage: true });
  await admin.click('#send-confirm-yes');
  await admin.locator('#send-status', { hasText: '2 notifications created' }).waitFor();
  await emma.locator('#toasts .toast', { hasText: 'New job fair' }).waitFor();
  await emma.locator('#badge[data-count="1"]').waitFor();
  const piaList = await api(fx.server, '/api/notifications/', { token: (await login(fx.server, 'pia', 'pia-password-1')).token });
  assert.equal(piaList.body.count, 0, 'the jobseeker got nothing');
  const ericList = await api(fx.server, '/api/notifications/', { token: (await login(fx.server, 'eric', 'eric-password-1')).token });
  assert.equal(ericList.body.notifications[0].title, 'New job fair');

  // The announcement is listed as live; editing it changes the user's banner in place.
  const row = admin.locator(`#globals-body tr[data-id="${g.id}"]`);
  assert.equal(await row.getAttribute('data-status'), 'active');
  assert.match(await row.textContent(), /Live now/);
  await row.locator('button.edit').click();
  await admin.locator('#edit-panel').waitFor();
  assert.equal(await admin.inputValue('#edit-title-input'), 'Maintenance at 22:00');
  await admin.fill('#edit-title-input', 'Maintenance at 23:00');
  await admin.check('input[name=edit-level][value=danger]');
  const inTwoHours = new Date(Date.now() + 2 * 3600_000);
  await admin.fill('#edit-expires', new Date(inTwoHours.getTime() - inTwoHours.getTimezoneOffset() * 60000).toISOString().slice(0, 16));
  await admin.click('#edit-form button[type=submit]');
  await admin.locator('#edit-panel').waitFor({ state: 'hidden' });
  await pia.locator(`#announcements .announcement[data-id="${g.id}"][data-level="danger"]`, { hasText: 'Maintenance at 23:00' }).waitFor();
  assert.equal(await pia.locator('#announcements .announcement').count(), 1, 'replaced, not added');
  assert.match(await row.locator('td.expires').textContent(), /in (2 h|1\d\d min)/);

  // Deactivated and reactivated: the banner goes and comes back.
  await row.locator('button.deactivate').click();
  await admin.locator(`#globals-body tr[data-id="${g.id}"][data-status="inactive"]`).waitFor();
  await banner.waitFor({ state: 'detached' });
  await admin.locator(`#globals-body tr[data-id="${g.id}"] button.reactivate`).click();
  await admin.locator(`#globals-body tr[data-id="${g.id}"][data-status="active"]`).waitFor();
  await banner.waitFor();

  // Deleted (two clicks: the first arms the button): the banner goes.
  const del = admin.locator(`#globals-body tr[data-id="${g.id}"] button.delete`);
  await del.click();
  assert.equal(await del.textContent(), 'Confirm delete');
  await del.click();
  await admin.locator(`#globals-body tr[data-id="${g.id}"]`).waitFor({ state: 'detached' });
  await banner.waitFor({ state: 'detached' });
  const live = await api(fx.server, '/api/global-notifications/');
  assert.equal(live.body.count, 0);
  await screenshot(pia, 'user-after-delete');
});
