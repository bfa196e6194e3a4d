// Herald admin page (`/admin/`): notify one user, several, a role or everyone; publish, edit,
// deactivate, reactivate and delete announcements.
import { apiFetch, ApiError } from '/static/herald.js';
import { $, el, sessionUser } from '/static/common.js';

const state = { user: null, users: [], globals: [], pending: null, editing: null };
window.heraldAdmin = state;

function show(section) {
  for (const id of ['loading', 'auth', 'forbidden', 'console']) $(id).hidden = id !== section;
}

function message(id, text) {
  const p = $(id);
  p.textContent = text || '';
  p.hidden = !text;
}

function flash(text, kind = 'info') {
  const f = $('flash');
  f.textContent = text || '';
  f.dataset.kind = kind;
  f.hidden = !text;
}

function fmt(iso) {
  if (!iso) return '—';
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : new Date(t).toLocaleString();
}

function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 401) return 'Your session has ended; sign in again.';
    if (err.status === 403) return 'Not allowed (admin role and a valid CSRF token are needed).';
    return err.message;
  }
  return 'Network error — is Herald running?';
}

/** `datetime-local` value (local time) → RFC 3339 UTC with whole seconds, or null. */
function toRfc3339(local) {
  if (!local) return null;
  const d = new Date(local);
  if (Number.isNaN(d.getTime())) return undefined;
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// ---------------------------------------------------------------- users

async function loadUsers() {
  const select = $('send-user');
  try {
    const data = await apiFetch('/api/admin/users/');
    state.users = data.users || [];
    const prev = select.value;
    select.replaceChildren(
      el('option', { value: '' }, state.users.length ? 'Choose a user…' : 'No users yet'),
      ...state.users.map((u) => el('option', { value: String(u.id) }, `${u.username} (${u.role}) · #${u.id}`)),
    );
    if (prev && state.users.some((u) => String(u.id) === prev)) select.value = prev;
    const many = $('send-users');
    const chosen = new Set([...many.selectedOptions].map((o) => o.value));
    many.replaceChildren(
      ...state.users.map((u) => el('option', { value: String(u.id), selected: chosen.has(String(u.id)) }, `${u.username} (${u.role}) · #${u.id}`)),
    );
  } catch (err) {
    select.replaceChildren(el('option', { value: '' }, 'Could not load users'));
    message('send-error', errorText(err));
  }
}

/** A fresh `Idempotency-Key`: a retry of the same submission reuses it, so nothing is sent twice. */
function newKey() {
  return globalThis.crypto && crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
}

function target() {
  return document.querySelector('input[name=target]:checked')?.value || 'one';
}

function showTarget() {
  const t = target();
  $('target-one').hidden = t !== 'one';
  $('target-list').hidden = t !== 'list';
  $('target-role').hidden = t !== 'role';
  $('send-confirm').hidden = true;
}

/** The content fields, or null after showing what is missing. */
function content() {
  const title = $('send-title-input').value.trim();
  const body = $('send-message').value.trim();
  const link = $('send-link').value.trim();
  if (!title || !body) {
    message('send-error', 'Title and message are required.');
    return null;
  }
  const payload = { title, message: body, notification_type: $('send-type').value };
  if (link) payload.link = link;
  return payload;
}

function clearContent() {
  $('send-title-input').value = '';
  $('send-message').value = '';
  $('send-link').value = '';
}

/** Who a multi-recipient send reaches and how many they are (counted from the users list). */
function audience() {
  const t = target();
  if (t === 'list') {
    const ids = [...$('send-users').selectedOptions].map((o) => Number(o.value));
    return { body: { user_ids: ids }, count: ids.length, label: ids.length === 1 ? '1 chosen user' : `${ids.length} chosen users` };
  }
  if (t === 'role') {
    const role = $('send-role').value;
    const count = state.users.filter((u) => u.role === role).length;
    return { body: { role }, count, label: `every ${role} (${count} ${count === 1 ? 'user' : 'users'})` };
  }
  const count = state.users.length;
  return { body: { all: true }, count, label: `everyone (${count} ${count === 1 ? 'user' : 'users'})` };
}

async function sendNotification(e) {
  e.preventDefault();
  message('send-error', '');
  message('send-status', '');
  $('send-confirm').hidden = true;
  const payload = content();
  if (!payload) return;
  if (target() === 'one') return sendOne(payload);
  if (target() === 'list' && $('send-users').selectedOptions.length === 0) return message('send-error', 'Choose at least one recipient.');
  // Counts from a fresh users list, then ask before sending to many.
  await loadUsers();
  const who = audience();
  if (who.count === 0) return message('send-error', 'Nobody would receive it.');
  state.pending = { payload: { ...payload, ...who.body }, label: who.label, key: newKey() };
  $('send-confirm-text').textContent = `Send “${payload.title}” to ${who.label}? ${who.count} ${who.count === 1 ? 'person' : 'people'} will receive it.`;
  $('send-confirm').hidden = false;
  $('send-confirm-yes').focus();
}

async function sendOne(payload) {
  const userId = $('send-user').value;
  if (!userId) return message('send-error', 'Choose a recipient.');
  const btn = $('send-submit');
  btn.disabled = true;
  try {
    const n = await apiFetch('/api/notifications/', {
      method: 'POST',
      body: { ...payload, user_id: Number(userId) },
      headers: { 'Idempotency-Key': newKey() },
    });
    const who = state.users.find((u) => u.id === Number(userId));
    message('send-status', `Sent “${n.title}” to ${who ? who.username : 'user #' + userId} (notification #${n.id}).`);
    clearContent();
  } catch (err) {
    message('send-error', `Not sent: ${errorText(err)}`);
  } finally {
    btn.disabled = false;
  }
}

async function confirmSend() {
  const pending = state.pending;
  if (!pending) return;
  const yes = $('send-confirm-yes');
  yes.disabled = true;
  try {
    const r = await apiFetch('/api/notifications/bulk/', {
      method: 'POST',
      body: pending.payload,
      headers: { 'Idempotency-Key': pending.key },
    });
    state.pending = null;
    $('send-confirm').hidden = true;
    message('send-status', `Sent “${pending.payload.title}” to ${pending.label}: ${r.created} notifications created.`);
    clearContent();
  } catch (err) {
    // The same key on a retry: a send that did go through is not repeated.
    message('send-error', `Not sent: ${errorText(err)}`);
  } finally {
    yes.disabled = false;
  }
}

// ---------------------------------------------------------------- announcements

/** Whether users see it now: active, shown on the site, not expired. */
function statusOf(g) {
  if (!g.is_active) return ['inactive', 'Inactive'];
  if (g.expires_at && Date.parse(g.expires_at) <= Date.now()) return ['expired', 'Expired'];
  if (g.show_on_site === false) return ['hidden', 'Hidden (not on site)'];
  return ['active', 'Live now'];
}

/** When it expires, with how far off that is. */
function expiryText(g) {
  if (!g.expires_at) return 'Never';
  const t = Date.parse(g.expires_at);
  const left = t - Date.now();
  if (Number.isNaN(t) || left <= 0) return fmt(g.expires_at);
  const mins = Math.round(left / 60000);
  const rel = mins < 60 ? `${mins} min` : mins < 48 * 60 ? `${Math.round(mins / 60)} h` : `${Math.round(mins / 1440)} days`;
  return `${fmt(g.expires_at)} (in ${rel})`;
}

function actionButton(cls, label, title, handler) {
  return el('button', { type: 'button', className: `btn btn-small ${cls}`, 'aria-label': `${label} “${title}”`, onclick: (ev) => handler(ev.currentTarget) }, label);
}

function renderGlobals() {
  const body = $('globals-body');
  body.replaceChildren(
    ...state.globals.map((g) => {
      const [st, label] = statusOf(g);
      return el(
        'tr',
        { dataset: { id: String(g.id), status: st } },
        // data-label: the column's name, shown beside the value when the row is a card (phones).
        el('td', { className: 'title-cell' }, el('strong', {}, g.title), el('div', { className: 'muted small' }, g.message)),
        el('td', { 'data-label': 'Level' }, el('span', { className: `level-chip level-${g.level}` }, g.level)),
        el('td', { 'data-label': 'Status' }, el('span', { className: `status-chip status-${st}` }, label)),
        el('td', { 'data-label': 'Created' }, fmt(g.created_at)),
        el('td', { className: 'expires', 'data-label': 'Expires' }, expiryText(g)),
        el(
          'td',
          { className: 'actions' },
          actionButton('btn-ghost edit', 'Edit', g.title, () => openEditor(g.id)),
          g.is_active
            ? actionButton('btn-danger-ghost deactivate', 'Deactivate', g.title, (btn) => change(g.id, { is_active: false }, btn, 'Deactivated'))
            : actionButton('btn-ghost reactivate', 'Reactivate', g.title, (btn) => change(g.id, { is_active: true }, btn, 'Reactivated')),
          actionButton('btn-danger-ghost delete', 'Delete', g.title, (btn) => remove(g.id, btn)),
        ),
      );
    }),
  );
  $('globals-empty').hidden = state.globals.length > 0;
  $('globals-table').hidden = state.globals.length === 0;
}

async function loadGlobals() {
  try {
    const data = await apiFetch('/api/admin/global-notifications/');
    state.globals = data.notifications || [];
    renderGlobals();
  } catch (err) {
    flash(`Could not load announcements: ${errorText(err)}`, 'error');
  }
}

async function publish(e) {
  e.preventDefault();
  message('publish-error', '');
  message('publish-status', '');
  const form = e.currentTarget;
  const title = $('publish-title-input').value.trim();
  const body = $('publish-message').value.trim();
  const level = form.querySelector('input[name=level]:checked')?.value || 'info';
  const expires = toRfc3339($('publish-expires').value);
  if (!title || !body) return message('publish-error', 'Title and message are required.');
  if (expires === undefined) return message('publish-error', 'The expiry date is not valid.');
  if (expires && Date.parse(expires) <= Date.now()) return message('publish-error', 'The expiry must be in the future.');
  const payload = { title, message: body, level };
  if (expires) payload.expires_at = expires;
  const btn = form.querySelector('button[type=submit]');
  btn.disabled = true;
  try {
    const g = await apiFetch('/api/global-notifications/', { method: 'POST', body: payload });
    message('publish-status', `Published “${g.title}” (#${g.id}).`);
    $('publish-title-input').value = '';
    $('publish-message').value = '';
    $('publish-expires').value = '';
    state.globals = [g, ...state.globals.filter((x) => x.id !== g.id)];
    renderGlobals();
  } catch (err) {
    message('publish-error', `Not published: ${errorText(err)}`);
  } finally {
    btn.disabled = false;
  }
}

/** PATCHes announcement `id` with `changes`; the server pushes the result to every socket. */
async function change(id, changes, btn, done) {
  btn.disabled = true;
  try {
    const g = await apiFetch(`/api/global-notifications/${encodeURIComponent(id)}/`, { method: 'PATCH', body: changes });
    state.globals = state.globals.map((x) => (x.id === id ? g : x));
    renderGlobals();
    flash(`${done} “${g.title}”.`, 'info');
    $('globals-title').focus();
    return true;
  } catch (err) {
    btn.disabled = false;
    flash(`Could not change it: ${errorText(err)}`, 'error');
    return false;
  }
}

/** Deletes after a second click on the same button (no browser dialog). */
async function remove(id, btn) {
  if (btn.dataset.armed !== 'yes') {
    btn.dataset.armed = 'yes';
    btn.textContent = 'Confirm delete';
    return;
  }
  btn.disabled = true;
  try {
    await apiFetch(`/api/global-notifications/${encodeURIComponent(id)}/`, { method: 'DELETE' });
    const gone = state.globals.find((x) => x.id === id);
    state.globals = state.globals.filter((x) => x.id !== id);
    if (state.editing === id) closeEditor();
    renderGlobals();
    flash(`Deleted “${gone ? gone.title : '#' + id}”.`, 'info');
    $('globals-title').focus();
  } catch (err) {
    btn.disabled = false;
    flash(`Could not delete: ${errorText(err)}`, 'error');
  }
}

/** `expires_at` (RFC 3339) → the `datetime-local` value in local time. */
function toLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

function openEditor(id) {
  const g = state.globals.find((x) => x.id === id);
  if (!g) return;
  state.editing = id;
  $('edit-id').textContent = `#${id}`;
  $('edit-title-input').value = g.title;
  $('edit-message').value = g.message;
  for (const r of document.querySelectorAll('input[name=edit-level]')) r.checked = r.value === g.level;
  $('edit-expires').value = toLocalInput(g.expires_at);
  $('edit-show').checked = g.show_on_site !== false;
  message('edit-error', '');
  $('edit-panel').hidden = false;
  $('edit-title').focus();
}

function closeEditor() {
  state.editing = null;
  $('edit-panel').hidden = true;
}

async function saveEdit(e) {
  e.preventDefault();
  message('edit-error', '');
  const id = state.editing;
  const title = $('edit-title-input').value.trim();
  const body = $('edit-message').value.trim();
  const expires = toRfc3339($('edit-expires').value);
  if (!title || !body) return message('edit-error', 'Title and message are required.');
  if (expires === undefined) return message('edit-error', 'The expiry date is not valid.');
  const changes = {
    title,
    message: body,
    level: document.querySelector('input[name=edit-level]:checked')?.value || 'info',
    expires_at: expires,
    show_on_site: $('edit-show').checked,
  };
  const btn = e.currentTarget.querySelector('button[type=submit]');
  if (await change(id, changes, btn, 'Saved')) closeEditor();
  btn.disabled = false;
}

// ---------------------------------------------------------------- session

function showUser(user) {
  $('user-menu').hidden = false;
  $('user-name').textContent = user.username;
  $('user-role').textContent = user.role;
}

async function enter(user) {
  state.user = user;
  showUser(user);
  if (user.role !== 'admin') {
    $('forbidden-user').textContent = user.username;
    $('forbidden-role').textContent = user.role;
    show('forbidden');
    return;
  }
  show('console');
  await Promise.all([loadUsers(), loadGlobals()]);
}

async function boot() {
  $('send-form').addEventListener('submit', sendNotification);
  for (const r of document.querySelectorAll('input[name=target]')) r.addEventListener('change', showTarget);
  $('send-confirm-yes').addEventListener('click', confirmSend);
  $('send-confirm-no').addEventListener('click', () => {
    state.pending = null;
    $('send-confirm').hidden = true;
  });
  $('edit-form').addEventListener('submit', saveEdit);
  $('edit-cancel').addEventListener('click', closeEditor);
  // Statuses and "expires in" follow the clock.
  setInterval(() => {
    if (state.globals.length && !$('console').hidden) renderGlobals();
  }, 30000);
  $('publish-form').addEventListener('submit', publish);
  $('globals-refresh').addEventListener('click', () => Promise.all([loadGlobals(), loadUsers()]));
  $('send-user').addEventListener('focus', () => {
    if (state.users.length === 0) loadUsers();
  });
  $('logout').addEventListener('click', async () => {
    try {
      await apiFetch('/api/auth/logout/', { method: 'POST' });
    } catch {
      /* fine */
    }
    state.user = null;
    $('user-menu').hidden = true;
    show('auth');
    flash('You are signed out.', 'info');
  });
  $('signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    message('signin-error', '');
    const username = $('signin-username').value.trim();
    const password = $('signin-password').value;
    if (!username || !password) return message('signin-error', 'Enter your username and password.');
    try {
      const data = await apiFetch('/api/auth/login/', { method: 'POST', body: { username, password } });
      e.target.reset();
      flash('');
      await enter(data.user);
    } catch (err) {
      message('signin-error', err instanceof ApiError && err.status === 401 ? 'Wrong username or password.' : `Sign-in failed: ${errorText(err)}`);
    }
  });

  try {
    const user = await sessionUser();
    if (user) await enter(user);
    else show('auth');
  } catch (err) {
    show('auth');
    flash(errorText(err), 'error');
  }
}

boot();
