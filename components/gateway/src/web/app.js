// vid2mp3's web page: sign up (then confirm the address from the emailed link, which lands on
// /confirm#token=...), log in, upload with progress, a live list of jobs, download, delete, log
// out, delete the account. Plain JavaScript against the JSON API under /api/v1; the session token lives
// in sessionStorage (this tab only, gone when it closes).
'use strict';

(function () {
  const API = '/api/v1';
  const SESSION_KEY = 'vid2mp3.session';
  const POLL_ACTIVE_MS = 1000;
  const POLL_IDLE_MS = 10000;
  const PAGE = 100;

  const $ = (id) => document.getElementById(id);
  const el = {
    authView: $('auth-view'),
    appView: $('app-view'),
    authForm: $('auth-form'),
    email: $('email'),
    password: $('password'),
    authError: $('auth-error'),
    authNotice: $('auth-notice'),
    resend: $('resend'),
    confirmView: $('confirm-view'),
    confirmError: $('confirm-error'),
    confirmButton: $('confirm-button'),
    account: $('account'),
    accountEmail: $('account-email'),
    logout: $('logout'),
    dropZone: $('drop-zone'),
    fileInput: $('file-input'),
    profile: $('profile'),
    loudness: $('loudness'),
    uploads: $('uploads'),
    jobs: $('jobs'),
    jobsEmpty: $('jobs-empty'),
    jobsError: $('jobs-error'),
    jobsMore: $('jobs-more'),
    refresh: $('refresh'),
    announcer: $('announcer'),
    deleteForm: $('delete-account-form'),
    deletePassword: $('delete-password'),
    deleteConfirm: $('delete-confirm'),
    deleteError: $('delete-account-error'),
    deleteButton: $('delete-account'),
    webhookForm: $('webhook-form'),
    webhookUrl: $('webhook-url'),
    webhookError: $('webhook-error'),
    webhookSecret: $('webhook-secret'),
    webhookRemove: $('webhook-remove'),
    main: $('main'),
  };

  let session = null; // {token, email, expiresAt}
  let pollTimer = null;
  let expiryTimer = null;
  let polling = false;
  const jobRows = new Map(); // job id -> {li, last}

  // ---- helpers --------------------------------------------------------------------------

  function announce(text) {
    // Clearing first makes screen readers repeat a message identical to the last one.
    el.announcer.textContent = '';
    window.setTimeout(() => { el.announcer.textContent = text; }, 50);
  }

  function showError(node, text) {
    node.textContent = text;
    node.hidden = !text;
  }

  function formatBytes(n) {
    if (n == null) return '';
    if (n < 1024) return n + ' B';
    const units = ['KB', 'MB', 'GB'];
    let v = n / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
    return v.toFixed(v < 10 ? 1 : 0) + ' ' + units[i];
  }

  function formatDuration(ms) {
    if (ms == null) return '';
    const s = Math.round(ms / 1000);
    const m = Math.floor(s / 60);
    const h = Math.floor(m / 60);
    const pad = (x) => String(x).padStart(2, '0');
    return h > 0 ? h + ':' + pad(m % 60) + ':' + pad(s % 60) : m + ':' + pad(s % 60);
  }

  // The API's error body {"error":{"code","message"}}: its code, and its message in words (something
  // sensible when there is none).
  async function errorInfo(response) {
    let message = '';
    let code = '';
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) message = body.error.message;
      if (body && body.error && body.error.code) code = body.error.code;
    } catch (_) { /* not JSON */ }
    return { code, text: describeError(response.status, message, response.headers.get('retry-after')) };
  }

  function sentence(text) {
    let t = text ? text.charAt(0).toUpperCase() + text.slice(1) : '';
    if (t && !/[.!?]$/.test(t)) t += '.';
    return t;
  }

  function describeError(status, message, retryAfter) {
    let text = message ? message.charAt(0).toUpperCase() + message.slice(1) : '';
    if (!text) {
      if (status === 401) text = 'You are not logged in.';
      else if (status === 413) text = 'The file is too large.';
      else if (status === 415) text = 'That kind of file cannot be converted.';
      else if (status === 429) text = 'Too many attempts.';
      else if (status >= 500) text = 'The service has a problem right now; try again shortly.';
      else text = 'The request failed (HTTP ' + status + ').';
    }
    if (!/[.!?]$/.test(text)) text += '.';
    if (status === 429 && retryAfter) text += ' Try again in ' + retryAfter + ' seconds.';
    return text;
  }

  const NETWORK_ERROR = 'The server cannot be reached. Check your connection and try again.';

  class ApiError extends Error {
    constructor(status, text, code) { super(text); this.status = status; this.code = code || ''; }
  }

  async function api(path, options) {
    // No cookies are involved (the token is a header), and 'omit' also keeps the browser from
    // answering a 401's `WWW-Authenticate: Basic` with its own password dialog.
    const opts = Object.assign({ credentials: 'omit', cache: 'no-store' }, options || {});
    opts.headers = Object.assign({}, opts.headers || {});
    if (session) opts.headers.Authorization = 'Bearer ' + session.token;
    let response;
    try {
      response = await fetch(API + path, opts);
    } catch (_) {
      throw new ApiError(0, NETWORK_ERROR);
    }
    if (!response.ok) {
      const info = await errorInfo(response);
      if (response.status === 401 && session) {
        endSession('Your session has ended. Please log in again.');
      }
      throw new ApiError(response.status, info.text, info.code);
    }
    return response;
  }

  // ---- session --------------------------------------------------------------------------

  function loadSession() {
    try {
      const s = JSON.parse(window.sessionStorage.getItem(SESSION_KEY) || 'null');
      if (s && s.token && s.expiresAt > Date.now()) return s;
    } catch (_) { /* ignore */ }
    window.sessionStorage.removeItem(SESSION_KEY);
    return null;
  }

  function startSession(s) {
    session = s;
    window.sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
    el.accountEmail.textContent = s.email;
    el.account.hidden = false;
    el.authView.hidden = true;
    el.appView.hidden = false;
    showError(el.authError, '');
    el.password.value = '';
    window.clearTimeout(expiryTimer);
    expiryTimer = window.setTimeout(
      () => endSession('Your session has ended. Please log in again.'),
      Math.max(0, s.expiresAt - Date.now()),
    );
    refreshJobs();
    loadWebhook();
  }

  function endSession(message) {
    session = null;
    window.sessionStorage.removeItem(SESSION_KEY);
    window.clearTimeout(pollTimer);
    window.clearTimeout(expiryTimer);
    jobRows.clear();
    el.jobs.replaceChildren();
    el.uploads.replaceChildren();
    el.webhookUrl.value = '';
    el.webhookSecret.replaceChildren();
    el.webhookSecret.hidden = true;
    el.webhookRemove.hidden = true;
    el.account.hidden = true;
    el.appView.hidden = true;
    el.authView.hidden = false;
    showError(el.authError, message || '');
    announce(message || 'You are logged out.');
    el.email.focus();
  }

  async function logIn(email, password) {
    const r = await api('/sessions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email, password }),
    });
    const body = await r.json();
    startSession({
      token: body.token,
      email: (body.account && body.account.email) || email,
      expiresAt: Date.now() + (body.expires_in || 3600) * 1000,
    });
    announce('Logged in as ' + ((body.account && body.account.email) || email) + '.');
    el.main.focus();
  }

  async function onAuthSubmit(event) {
    event.preventDefault();
    const action = event.submitter && event.submitter.value === 'signup' ? 'signup' : 'login';
    const email = el.email.value.trim();
    const password = el.password.value;
    if (!email || !el.email.checkValidity()) {
      showError(el.authError, 'Enter your email address, like name@example.com.');
      el.email.focus();
      return;
    }
    if (password.length < (action === 'signup' ? 10 : 1)) {
      showError(el.authError, action === 'signup'
        ? 'Choose a password of at least 10 characters.'
        : 'Enter your password.');
      el.password.focus();
      return;
    }
    const buttons = el.authForm.querySelectorAll('button');
    buttons.forEach((b) => { b.disabled = true; });
    showError(el.authError, '');
    showError(el.authNotice, '');
    el.resend.hidden = true;
    try {
      if (action === 'signup') {
        // The account cannot log in until its address is confirmed: the answer says where to look.
        const r = await api('/users', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ email, password }),
        });
        const body = await r.json();
        el.password.value = '';
        showError(el.authNotice, sentence(body.message));
        announce('Check your inbox for the link to confirm your address.');
      } else {
        await logIn(email, password);
      }
    } catch (e) {
      showError(el.authError, e.message);
      // The right password of an unconfirmed account: offer another link.
      el.resend.hidden = e.code !== 'email_not_confirmed';
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  async function onResend() {
    const email = el.email.value.trim();
    const password = el.password.value;
    if (!email || !password) {
      showError(el.authError, 'Enter the email address and password you signed up with.');
      return;
    }
    el.resend.disabled = true;
    showError(el.authError, '');
    try {
      const r = await api('/users/confirmation-email', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ email, password }),
      });
      const body = await r.json();
      showError(el.authNotice, sentence(body.message));
      el.resend.hidden = true;
      announce('Check your inbox for a new link.');
    } catch (e) {
      showError(el.authError, e.message);
    } finally {
      el.resend.disabled = false;
    }
  }

  // ---- confirming an address (/confirm#token=...) ---------------------------------------

  // The token is in the fragment: the browser never sends it to a server (nor in a Referer).
  function confirmationToken() {
    const m = /^#token=([A-Za-z0-9_-]+)$/.exec(window.location.hash);
    return m ? m[1] : '';
  }

  function showConfirmView() {
    el.authView.hidden = true;
    el.appView.hidden = true;
    el.account.hidden = true;
    el.confirmView.hidden = false;
    if (!confirmationToken()) {
      showError(el.confirmError, 'This link is incomplete. Copy the whole link from the email into the address bar.');
      el.confirmButton.hidden = true;
    }
  }

  async function onConfirm() {
    el.confirmButton.disabled = true;
    showError(el.confirmError, '');
    try {
      const r = await api('/users/confirmation', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ token: confirmationToken() }),
      });
      const account = await r.json();
      // The token is spent: it leaves the address bar and the history.
      window.history.replaceState(null, '', '/');
      el.confirmView.hidden = true;
      el.authView.hidden = false;
      el.email.value = account.email || '';
      showError(el.authNotice, 'Your address ' + (account.email || '') + ' is confirmed. Log in with the password you chose when you signed up.');
      announce('Your address is confirmed. You can log in now.');
      el.password.focus();
    } catch (e) {
      showError(el.confirmError, e.message);
    } finally {
      el.confirmButton.disabled = false;
    }
  }

  // ---- uploads --------------------------------------------------------------------------

  function uploadFiles(files) {
    const list = Array.from(files || []);
    if (!list.length || !session) return;
    announce(list.length === 1 ? 'Uploading ' + list[0].name + '.' : 'Uploading ' + list.length + ' files.');
    list.forEach(uploadOne);
  }

  function uploadOne(file) {
    const li = document.createElement('li');
    li.className = 'row upload';
    const main = document.createElement('div');
    main.className = 'row-main';
    const name = document.createElement('p');
    name.className = 'row-name';
    name.textContent = file.name;
    const status = document.createElement('p');
    status.className = 'row-status';
    status.textContent = 'Uploading… 0 %';
    const bar = document.createElement('progress');
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute('aria-label', 'Upload of ' + file.name);
    main.append(name, status, bar);
    const actions = document.createElement('div');
    actions.className = 'row-actions';
    const cancel = document.createElement('button');
    cancel.type = 'button';
    cancel.className = 'button secondary small';
    cancel.textContent = 'Cancel';
    cancel.setAttribute('aria-label', 'Cancel the upload of ' + file.name);
    actions.append(cancel);
    li.append(main, actions);
    el.uploads.append(li);

    const xhr = new XMLHttpRequest();
    let query = '?name=' + encodeURIComponent(file.name) + '&profile=' + encodeURIComponent(el.profile.value);
    if (el.loudness.value !== 'off') query += '&loudness=' + encodeURIComponent(el.loudness.value);
    xhr.open('POST', API + '/jobs' + query);
    xhr.setRequestHeader('Authorization', 'Bearer ' + session.token);
    xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
    xhr.responseType = 'text';
    xhr.upload.addEventListener('progress', (e) => {
      if (!e.lengthComputable) return;
      const pct = Math.floor((e.loaded / e.total) * 100);
      bar.value = pct;
      status.textContent = 'Uploading… ' + pct + ' % of ' + formatBytes(e.total);
    });
    const finish = (ok, text) => {
      cancel.remove();
      status.textContent = text;
      status.classList.toggle('failed', !ok);
      li.dataset.state = ok ? 'uploaded' : 'failed';
      if (ok) {
        bar.value = 100;
        window.setTimeout(() => li.remove(), 4000);
      } else {
        bar.remove();
        const dismiss = document.createElement('button');
        dismiss.type = 'button';
        dismiss.className = 'button secondary small';
        dismiss.textContent = 'Dismiss';
        dismiss.setAttribute('aria-label', 'Dismiss the message about ' + file.name);
        dismiss.addEventListener('click', () => li.remove());
        actions.append(dismiss);
      }
      announce(file.name + ': ' + text);
    };
    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        finish(true, 'Uploaded; converting soon.');
        refreshJobs();
        return;
      }
      let message = '';
      try { message = JSON.parse(xhr.responseText).error.message; } catch (_) { /* not JSON */ }
      finish(false, 'Not uploaded: ' + describeError(xhr.status, message, xhr.getResponseHeader('retry-after')));
      if (xhr.status === 401) endSession('Your session has ended. Please log in again.');
    });
    xhr.addEventListener('error', () => finish(false, 'Not uploaded: ' + NETWORK_ERROR));
    xhr.addEventListener('abort', () => finish(false, 'Upload cancelled.'));
    cancel.addEventListener('click', () => xhr.abort());
    xhr.send(file);
  }

  function setUpDropZone() {
    const zone = el.dropZone;
    let depth = 0;
    zone.addEventListener('dragenter', (e) => {
      e.preventDefault();
      depth += 1;
      zone.classList.add('dragging');
    });
    zone.addEventListener('dragover', (e) => {
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
    });
    zone.addEventListener('dragleave', () => {
      depth = Math.max(0, depth - 1);
      if (depth === 0) zone.classList.remove('dragging');
    });
    zone.addEventListener('drop', (e) => {
      e.preventDefault();
      depth = 0;
      zone.classList.remove('dragging');
      if (e.dataTransfer) uploadFiles(e.dataTransfer.files);
    });
    // A file dropped beside the zone must not replace the page with the video.
    window.addEventListener('dragover', (e) => e.preventDefault());
    window.addEventListener('drop', (e) => e.preventDefault());
    el.fileInput.addEventListener('change', () => {
      uploadFiles(el.fileInput.files);
      el.fileInput.value = '';
    });
  }

  // ---- jobs -----------------------------------------------------------------------------

  function statusText(job) {
    switch (job.status) {
      case 'queued': return 'Waiting to be converted.';
      case 'converting': {
        let t = 'Converting… ' + job.progress_percent + ' %';
        if (job.eta_ms != null) t += ', about ' + formatDuration(job.eta_ms) + ' left';
        return t + '.';
      }
      case 'done': {
        const parts = ['Done'];
        if (job.duration_ms != null) parts.push(formatDuration(job.duration_ms));
        if (job.loudness_lufs != null) parts.push('levelled to ' + job.loudness_lufs + ' LUFS');
        if (job.mp3_size_bytes != null) parts.push(formatBytes(job.mp3_size_bytes) + ' mp3');
        return parts.join(' · ') + '.';
      }
      case 'failed':
        return 'Failed: ' + describeError(0, job.error && job.error.message, null);
      default:
        return job.status;
    }
  }

  function makeJobRow(job) {
    const li = document.createElement('li');
    li.className = 'row job';
    li.dataset.jobId = job.id;
    const main = document.createElement('div');
    main.className = 'row-main';
    const name = document.createElement('p');
    name.className = 'row-name';
    const status = document.createElement('p');
    status.className = 'row-status';
    const bar = document.createElement('progress');
    bar.max = 100;
    main.append(name, status, bar);
    const actions = document.createElement('div');
    actions.className = 'row-actions';
    const download = document.createElement('button');
    download.type = 'button';
    download.className = 'button primary small';
    download.textContent = 'Download mp3';
    download.addEventListener('click', () => downloadMp3(job.id, download));
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'button danger small';
    del.textContent = 'Delete';
    del.addEventListener('click', () => deleteJob(job.id, del));
    actions.append(download, del);
    li.append(main, actions);
    return { li, name, status, bar, download, del, last: null };
  }

  function updateJobRow(row, job) {
    const label = job.original_name || 'video';
    row.job = job;
    row.name.textContent = label;
    row.status.textContent = statusText(job);
    row.status.className = 'row-status ' + job.status;
    row.li.dataset.status = job.status;
    const active = job.status === 'queued' || job.status === 'converting';
    row.bar.hidden = !active;
    row.bar.value = job.progress_percent || 0;
    row.bar.setAttribute('aria-label', 'Conversion of ' + label);
    row.download.hidden = job.status !== 'done';
    row.download.setAttribute('aria-label', 'Download mp3 of ' + label);
    row.del.setAttribute('aria-label', 'Delete ' + label);
    if (row.last && row.last !== job.status) {
      if (job.status === 'done') announce(label + ' is converted and ready to download.');
      else if (job.status === 'failed') announce(label + ' could not be converted. ' + statusText(job));
      else if (job.status === 'converting') announce(label + ' is being converted.');
    }
    row.last = job.status;
  }

  function renderJobs(page) {
    const seen = new Set();
    let previous = null;
    for (const job of page.jobs) {
      seen.add(job.id);
      let row = jobRows.get(job.id);
      if (!row) {
        row = makeJobRow(job);
        jobRows.set(job.id, row);
      }
      updateJobRow(row, job);
      // Keep the API's order (newest first) without re-creating rows, so focus stays put.
      const want = previous ? previous.nextSibling : el.jobs.firstChild;
      if (want !== row.li) el.jobs.insertBefore(row.li, want);
      previous = row.li;
    }
    for (const [id, row] of jobRows) {
      if (!seen.has(id)) {
        row.li.remove();
        jobRows.delete(id);
      }
    }
    el.jobsEmpty.hidden = page.jobs.length > 0;
    el.jobsMore.hidden = !page.next_cursor;
    return page.jobs.some((j) => j.status === 'queued' || j.status === 'converting');
  }

  async function refreshJobs() {
    if (!session) return;
    window.clearTimeout(pollTimer);
    if (polling) {
      pollTimer = window.setTimeout(refreshJobs, 200);
      return;
    }
    polling = true;
    let active = false;
    try {
      const r = await api('/jobs?limit=' + PAGE);
      active = renderJobs(await r.json());
      showError(el.jobsError, '');
    } catch (e) {
      if (session) showError(el.jobsError, 'The list could not be updated: ' + e.message);
    } finally {
      polling = false;
    }
    if (session && !document.hidden) {
      pollTimer = window.setTimeout(refreshJobs, active ? POLL_ACTIVE_MS : POLL_IDLE_MS);
    }
  }

  function fileNameFrom(disposition, fallback) {
    if (disposition) {
      const exact = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
      if (exact) {
        try { return decodeURIComponent(exact[1]); } catch (_) { /* fall through */ }
      }
      const plain = /filename="([^"]+)"/i.exec(disposition);
      if (plain) return plain[1];
    }
    return fallback;
  }

  async function downloadMp3(id, button) {
    const row = jobRows.get(id);
    const label = (row && row.job && row.job.original_name) || 'video';
    const fallback = label.replace(/\.[^.]+$/, '') + '.mp3';
    const text = button.textContent;
    button.disabled = true;
    button.textContent = 'Downloading…';
    try {
      const r = await api('/jobs/' + encodeURIComponent(id) + '/mp3');
      const blob = await r.blob();
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = fileNameFrom(r.headers.get('content-disposition'), fallback);
      document.body.append(a);
      a.click();
      a.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 60000);
      announce('Downloaded ' + a.download + '.');
    } catch (e) {
      showError(el.jobsError, 'The mp3 of ' + label + ' could not be downloaded: ' + e.message);
    } finally {
      button.disabled = false;
      button.textContent = text;
    }
  }

  async function deleteJob(id, button) {
    const row = jobRows.get(id);
    const label = (row && row.job && row.job.original_name) || 'this video';
    if (!window.confirm('Delete ' + label + ' and its mp3? This cannot be undone.')) return;
    button.disabled = true;
    try {
      await api('/jobs/' + encodeURIComponent(id), { method: 'DELETE' });
      if (row) {
        // Move focus somewhere sensible before the focused button disappears.
        const next = row.li.nextElementSibling || row.li.previousElementSibling;
        row.li.remove();
        jobRows.delete(id);
        const target = next && next.querySelector('button:not([hidden])');
        (target || el.refresh).focus();
      }
      el.jobsEmpty.hidden = jobRows.size > 0;
      announce(label + ' was deleted.');
      refreshJobs();
    } catch (e) {
      button.disabled = false;
      showError(el.jobsError, label + ' could not be deleted: ' + e.message);
    }
  }

  // DELETE /api/v1/account with the password, once the box is ticked. A failure deletes nothing
  // (or, cut off midway, is finished by pressing again); success ends the session.
  async function onDeleteAccount(event) {
    event.preventDefault();
    const password = el.deletePassword.value;
    if (!password) {
      showError(el.deleteError, 'Type your password to delete the account. Nothing was deleted.');
      el.deletePassword.focus();
      return;
    }
    if (!el.deleteConfirm.checked) {
      showError(el.deleteError, 'Tick the box to confirm. Nothing was deleted.');
      el.deleteConfirm.focus();
      return;
    }
    showError(el.deleteError, '');
    el.deleteButton.disabled = true;
    try {
      await api('/account', {
        method: 'DELETE',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ password }),
      });
      el.deletePassword.value = '';
      el.deleteConfirm.checked = false;
      endSession('Your account and everything of it were deleted.');
    } catch (e) {
      if (session) showError(el.deleteError, sentence(e.message));
    } finally {
      el.deleteButton.disabled = false;
    }
  }

  // ---- start ----------------------------------------------------------------------------

  // ---- webhook ----------------------------------------------------------------------------

  // The account's webhook: GET shows the URL (never the secret), PUT sets it and answers with the
  // secret, the one time it is shown, DELETE removes it.
  async function loadWebhook() {
    try {
      const r = await api('/webhook');
      const body = await r.json();
      el.webhookUrl.value = body.url || '';
      el.webhookRemove.hidden = false;
    } catch (e) {
      el.webhookRemove.hidden = true;
      if (e.status !== 404 && session) showError(el.webhookError, e.message);
    }
  }

  async function onWebhookSubmit(event) {
    event.preventDefault();
    showError(el.webhookError, '');
    el.webhookSecret.hidden = true;
    const url = el.webhookUrl.value.trim();
    if (!url) {
      showError(el.webhookError, 'Enter the https address to call, or remove the webhook.');
      el.webhookUrl.focus();
      return;
    }
    try {
      const r = await api('/webhook', {
        method: 'PUT',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ url }),
      });
      const body = await r.json();
      const code = document.createElement('code');
      code.textContent = body.secret || '';
      el.webhookSecret.replaceChildren(
        'Saved. Your signing secret (copy it now, it is not shown again): ', code);
      el.webhookSecret.hidden = false;
      el.webhookRemove.hidden = false;
      announce('Webhook saved.');
    } catch (e) {
      showError(el.webhookError, e.message);
      el.webhookUrl.focus();
    }
  }

  async function onWebhookRemove() {
    showError(el.webhookError, '');
    try {
      await api('/webhook', { method: 'DELETE' });
      el.webhookUrl.value = '';
      el.webhookSecret.hidden = true;
      el.webhookRemove.hidden = true;
      announce('Webhook removed.');
    } catch (e) {
      showError(el.webhookError, e.message);
    }
  }

  el.webhookForm.addEventListener('submit', onWebhookSubmit);
  el.webhookRemove.addEventListener('click', onWebhookRemove);
  el.authForm.addEventListener('submit', onAuthSubmit);
  el.resend.addEventListener('click', onResend);
  el.confirmButton.addEventListener('click', onConfirm);
  el.logout.addEventListener('click', () => endSession(''));
  el.refresh.addEventListener('click', () => refreshJobs());
  el.deleteForm.addEventListener('submit', onDeleteAccount);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && session) refreshJobs();
  });
  setUpDropZone();

  if (window.location.pathname === '/confirm') {
    showConfirmView();
  } else {
    const saved = loadSession();
    if (saved) startSession(saved);
  }
})();
