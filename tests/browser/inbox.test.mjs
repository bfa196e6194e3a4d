// The inbox on the page: All/Unread, the type filter, "Load more" by keyset, mark unread, delete
// in one tab seen in another, clear read, and muted types that raise no toast.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useFixture, adminToken, register, notify, api, waitForConn, screenshot, waitUntil, sleep } from './harness.mjs';

const fx = useFixture();

const items = (page) => page.locator('#notif-list .notif');
const ids = (page) => items(page).evaluateAll((els) => els.map((e) => Number(e.dataset.id)));

test('unread tab, type filter and load more', async () => {
  const fay = await register(fx.server, 'fay', 'fay-password-1');
  const token = await adminToken(fx.server);
  const created = [];
  for (let i = 0; i < 60; i++) {
    const type = i % 3 === 0 ? 'message' : 'job_post';
    created.push(await notify(fx.server, token, fay.id, { title: `Item ${i}`, notification_type: type }));
  }
  // Every fourth one read (15 of 60).
  const { body: login } = await api(fx.server, '/api/auth/login/', { method: 'POST', body: { username: 'fay', password: 'fay-password-1' } });
  for (const n of created.filter((_, i) => i % 4 === 0)) {
    await api(fx.server, `/api/notifications/${n.id}/mark-read/`, { method: 'POST', token: login.token });
  }
  const newestFirst = created.map((n) => n.id).reverse();

  const page = await fx.signedInPage('fay', 'fay-password-1', {
    context: await fx.context({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true }),
  });
  await waitForConn(page, 'open');
  await page.locator('#badge[data-count="45"]').waitFor();

  // A first page of 50, then the rest by keyset.
  await waitUntil(async () => (await items(page).count()) === 50, { message: 'a page of 50' });
  assert.deepEqual(await ids(page), newestFirst.slice(0, 50));
  await page.click('#load-more');
  await waitUntil(async () => (await items(page).count()) === 60, { message: 'all 60 after Load more' });
  assert.deepEqual(await ids(page), newestFirst);
  assert.equal(await page.locator('#load-more').isVisible(), false, 'nothing more to load');

  // Readable at 390 px: nothing overflows sideways.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `horizontal overflow of ${overflow}px`);

  // Unread only, by keyboard: focus the All tab, arrow to Unread.
  await page.focus('#view-all');
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.getAttribute('#view-unread', 'aria-selected'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'view-unread');
  await waitUntil(async () => (await page.locator('#notif-list .notif.is-read').count()) === 0 && (await items(page).count()) === 45, {
    message: 'only the 45 unread',
  });
  // 45 unread fit one page: no Load more.
  assert.equal(await page.locator('#load-more').isVisible(), false);

  // Unread messages only.
  await page.selectOption('#type-filter', 'message');
  const unreadMessages = created.filter((n, i) => i % 3 === 0 && i % 4 !== 0).map((n) => n.id).reverse();
  await waitUntil(async () => JSON.stringify(await ids(page)) === JSON.stringify(unreadMessages), { message: 'unread messages' });

  // Marking one read in this view takes it out of the view, and the badge follows.
  await items(page).first().locator('button.mark-read').click();
  await page.locator('#badge[data-count="44"]').waitFor();
  await waitUntil(async () => (await items(page).count()) === unreadMessages.length - 1, { message: 'the read one left the Unread view' });
  await screenshot(page, 'inbox-unread-messages');

  // Back to all types, all items: it is there, read, with "Mark unread".
  await page.selectOption('#type-filter', '');
  await page.click('#view-all');
  const readNow = page.locator(`#notif-list .notif[data-id="${unreadMessages[0]}"]`);
  await readNow.locator('button.mark-unread').waitFor();
  await readNow.locator('button.mark-unread').click();
  await page.locator('#badge[data-count="45"]').waitFor();
  await page.locator(`#notif-list .notif.is-unread[data-id="${unreadMessages[0]}"]`).waitFor();
});

test('a delete in one tab removes the item in the other; clear read empties both of read ones', async () => {
  const gus = await register(fx.server, 'gus', 'gus-password-1');
  const token = await adminToken(fx.server);
  const a = await notify(fx.server, token, gus.id, { title: 'Alpha' });
  const b = await notify(fx.server, token, gus.id, { title: 'Beta' });
  const c = await notify(fx.server, token, gus.id, { title: 'Gamma' });
  const ctx = await fx.context();
  const tabA = await fx.signedInPage('gus', 'gus-password-1', { context: ctx });
  // A second tab of the same browser: already signed in by the cookie.
  const tabB = await ctx.newPage();
  await tabB.goto(fx.server.url('/'));
  await tabB.locator('#notif-panel').waitFor();
  for (const p of [tabA, tabB]) {
    await waitForConn(p, 'open');
    await waitUntil(async () => (await items(p).count()) === 3, { message: 'three items' });
  }

  // Delete Beta (unread) in A by keyboard: it vanishes from B, and both badges say 2.
  await tabA.locator(`#notif-list .notif[data-id="${b.id}"] button.delete`).focus();
  await tabA.keyboard.press('Enter');
  for (const p of [tabA, tabB]) {
    await p.locator(`#notif-list .notif[data-id="${b.id}"]`).waitFor({ state: 'detached' });
    await p.locator('#badge[data-count="2"]').waitFor();
  }
  // Focus moved to the item that took its place, not lost.
  assert.equal(await tabA.evaluate(() => document.activeElement?.closest('.notif')?.dataset.id), String(a.id));

  // Mark Gamma read in B; clear read in A: Gamma goes from both, Alpha stays.
  await tabB.locator(`#notif-list .notif[data-id="${c.id}"] button.mark-read`).click();
  await tabA.locator(`#notif-list .notif.is-read[data-id="${c.id}"]`).waitFor();
  tabA.once('dialog', (d) => d.accept());
  await tabA.click('#clear-read');
  for (const p of [tabA, tabB]) {
    await p.locator(`#notif-list .notif[data-id="${c.id}"]`).waitFor({ state: 'detached' });
    assert.deepEqual(await ids(p), [a.id]);
    await p.locator('#badge[data-count="1"]').waitFor();
  }
  const { body } = await api(fx.server, '/api/notifications/', { token: (await api(fx.server, '/api/auth/login/', { method: 'POST', body: { username: 'gus', password: 'gus-password-1' } })).body.token });
  assert.deepEqual(body.notifications.map((n) => n.id), [a.id], 'the server agrees');
  await screenshot(tabB, 'inbox-after-delete');
});

test('a muted type raises no toast but is listed; an unmuted one toasts', async () => {
  const hal = await register(fx.server, 'hal', 'hal-password-1');
  const token = await adminToken(fx.server);
  const page = await fx.signedInPage('hal', 'hal-password-1');
  await waitForConn(page, 'open');

  // Mute messages in the settings panel, by keyboard.
  await page.locator('#settings summary').focus();
  await page.keyboard.press('Enter');
  await page.locator('#settings-form input[value=message]').focus();
  await page.keyboard.press('Space');
  assert.equal(await page.isChecked('#settings-form input[value=message]'), true);
  assert.equal(await page.locator('#settings-form input[value=system]').count(), 0, 'system cannot be muted');
  await page.click('#settings-save');
  await page.locator('#settings-status', { hasText: 'Saved' }).waitFor();
  const { body: prefs } = await api(fx.server, '/api/preferences/', { token: (await api(fx.server, '/api/auth/login/', { method: 'POST', body: { username: 'hal', password: 'hal-password-1' } })).body.token });
  assert.deepEqual(prefs, { muted_types: ['message'] });

  await notify(fx.server, token, hal.id, { title: 'Quiet message', notification_type: 'message' });
  const loud = await notify(fx.server, token, hal.id, { title: 'Loud job post', notification_type: 'job_post' });
  // The unmuted one, created after the muted one, toasts: had the muted one been pushed, it
  // would have arrived first.
  await page.locator('#toasts .toast', { hasText: 'Loud job post' }).waitFor();
  await sleep(300);
  assert.equal(await page.locator('#toasts .toast', { hasText: 'Quiet message' }).count(), 0, 'no toast for a muted type');

  // Both are listed after a reload (the muted one was saved).
  await page.reload();
  await waitUntil(async () => (await items(page).count()) === 2, { message: 'both listed' });
  assert.equal(await page.locator('#notif-list .notif', { hasText: 'Quiet message' }).count(), 1);
  assert.equal(Number(await items(page).first().getAttribute('data-id')), loud.id);
  // The settings panel shows the stored mute.
  assert.equal(await page.isChecked('#settings-form input[value=message]'), true);
});
