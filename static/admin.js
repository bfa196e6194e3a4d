// Herald admin page (`/admin/`): send notifications, publish and deactivate announcements.
import { apiFetch, ApiError } from '/static/herald.js';
import { $, el } from '/static/common.js';

const state = { user: null, users: [], globals: [] };
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
  } catch (err) {
    select.replaceChildren(el('option', { value: '' }, 'Could not load users'));
    message('send-error', errorText(err));
  }
}

async function sendNotification(e) {
  e.preventDefault();
  message('send-error', '');
  message('send-status', '');
  const userId = $('send-user').value;
  const title = $('send-title-input').value.trim();
  const body = $('send-message').value.trim();
  const link = $('send-link').value.trim();
  if (!userId) return message('send-error', 'Choose a recipient.');
  if (!title || !body) return message('send-error', 'Title and message are required.');
  const payload = {
    user_id: Number(userId),
    title,
    message: body,
    notification_type: $('send-type').value,
  };
  if (link) payload.link = link;
  const btn = e.currentTarget.querySelector('button[type=submit]');
  btn.disabled = true;
  try {
    const n = await apiFetch('/api/notifications/', { method: 'POST', body: payload });
    const who = state.users.find((u) => u.id === Number(userId));
    message('send-status', `Sent “${n.title}” to ${who ? who.username : 'user #' + userId} (notification #${n.id}).`);
    $('send-title-input').value = '';
    $('send-message').value = '';
    $('send-link').value = '';
  } catch (err) {
    message('send-error', `Not sent: ${errorText(err)}`);
  } finally {
    btn.disabled = false;
  }
}

// ---------------------------------------------------------------- announcements

function statusOf(g) {
  if (!g.is_active) return ['inactive', 'Inactive'];
  if (g.expires_at && Date.parse(g.expires_at) <= Date.now()) return ['expired', 'Expired'];
  if (g.show_on_site === false) return ['hidden', 'Active (not on site)'];
  return ['active', 'Active'];
}

function renderGlobals() {
  const body = $('globals-body');
  body.replaceChildren(
    ...state.globals.map((g) => {
      const [st, label] = statusOf(g);
      return el(
        'tr',
        { dataset: { id: String(g.id), status: st } },
        el('td', {}, el('strong', {}, g.title), el('div', { className: 'muted small' }, g.message)),
        el('td', {}, el('span', { className: `level-chip level-${g.level}` }, g.level)),
        el('td', {}, el('span', { className: `status-chip status-${st}` }, label)),
        el('td', {}, fmt(g.created_at)),
        el('td', {}, fmt(g.expires_at)),
        el(
          'td',
          { className: 'actions' },
          g.is_active
            ? el('button', { type: 'button', className: 'btn btn-small btn-danger-ghost deactivate', 'aria-label': `Deactivate “${g.title}”`, onclick: (ev) => deactivate(g.id, ev.currentTarget) }, 'Deactivate')
            : null,
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

async function deactivate(id, btn) {
  btn.disabled = true;
  try {
    const g = await apiFetch(`/api/global-notifications/${encodeURIComponent(id)}/`, { method: 'PATCH', body: { is_active: false } });
    state.globals = state.globals.map((x) => (x.id === id ? { ...x, ...g, is_active: false } : x));
    renderGlobals();
    flash(`Deactivated “${g.title || '#' + id}”.`, 'info');
    $('globals-title').focus();
  } catch (err) {
    btn.disabled = false;
    flash(`Could not deactivate: ${errorText(err)}`, 'error');
  }
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
    const user = await apiFetch('/api/auth/me/');
    await enter(user);
  } catch (err) {
    show('auth');
    if (!(err instanceof ApiError && err.status === 401)) flash(errorText(err), 'error');
  }
}

boot();
