// vid2mp3's web page: sign up (then confirm the address from the emailed link, which lands on
// /confirm#token=...), log in, upload with progress (resumable: tus), a live list of jobs,
// download, delete, log out, delete the account. Plain JavaScript against the JSON API under /api/v1; the session token lives
// in sessionStorage (this tab only, gone when it closes).
'use strict';

(function () {
  const API = '/api/v1';
  const JOBS = '/jobs';
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
    showUnfinishedUploads();
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

  // Uploads are resumable (tus 1.0.0 on /api/v1/uploads): created with POST, sent in pieces with
  // PATCH from the server's offset, so a network error costs at most the piece under way. Each
  // unfinished upload's URL is kept in localStorage under the file's name, size and lastModified
  // and the account (never the token): after a reload the page lists them, and choosing the same
  // file again goes on from the server's offset. A browser cannot reopen a file by itself.
  const TUS = '1.0.0';
  const UPLOADS_KEY = 'vid2mp3.uploads';
  const PIECE_BYTES = 8 * 1024 * 1024;
  const MAX_TRIES_WITHOUT_PROGRESS = 5;
  const FIRST_BACKOFF_MS = 500;

  function savedUploads() {
    try {
      const all = JSON.parse(window.localStorage.getItem(UPLOADS_KEY) || '{}');
      return all && typeof all === 'object' ? all : {};
    } catch (_) {
      return {};
    }
  }

  function storeUploads(all) {
    try {
      window.localStorage.setItem(UPLOADS_KEY, JSON.stringify(all));
    } catch (_) { /* storage full or off: uploads still work, they just cannot be resumed */ }
  }

  function uploadKey(file) {
    return JSON.stringify([session.email, file.name, file.size, file.lastModified]);
  }

  function rememberUpload(key, record) {
    const all = savedUploads();
    all[key] = record;
    storeUploads(all);
  }

  function forgetUpload(key) {
    const all = savedUploads();
    delete all[key];
    storeUploads(all);
  }

  // This account's unfinished uploads: [key, record].
  function myUploads() {
    return Object.entries(savedUploads()).filter(([, r]) => r && r.account === session.email);
  }

  function base64Utf8(text) {
    let binary = '';
    new TextEncoder().encode(text).forEach((b) => { binary += String.fromCharCode(b); });
    return window.btoa(binary);
  }

  function uploadMetadata(pairs) {
    return Object.entries(pairs).map(([k, v]) => k + ' ' + base64Utf8(v)).join(',');
  }

  function tusHeaders(extra) {
    return Object.assign({ 'Tus-Resumable': TUS }, extra || {});
  }

  // HEAD: {offset, length}, or null when the server no longer has the upload.
  async function uploadProgress(url) {
    let r;
    try {
      r = await fetch(url, {
        method: 'HEAD', credentials: 'omit', cache: 'no-store',
        headers: tusHeaders({ Authorization: 'Bearer ' + session.token }),
      });
    } catch (_) {
      throw new ApiError(0, NETWORK_ERROR);
    }
    if (r.status === 404 || r.status === 410) return null;
    if (!r.ok) throw new ApiError(r.status, describeError(r.status, '', null));
    return {
      offset: Number(r.headers.get('upload-offset')),
      length: Number(r.headers.get('upload-length')),
    };
  }

  async function terminateUpload(url) {
    try {
      await fetch(url, {
        method: 'DELETE', credentials: 'omit',
        headers: tusHeaders({ Authorization: 'Bearer ' + session.token }),
      });
    } catch (_) { /* it expires on the server anyway */ }
  }

  const sleep = (ms) => new Promise((resolve) => { window.setTimeout(resolve, ms); });

  function uploadFiles(files) {
    const list = Array.from(files || []);
    if (!list.length || !session) return;
    announce(list.length === 1 ? 'Uploading ' + list[0].name + '.' : 'Uploading ' + list.length + ' files.');
    list.forEach(uploadOne);
  }

  function uploadRow(label, statusText) {
    const li = document.createElement('li');
    li.className = 'row upload';
    const main = document.createElement('div');
    main.className = 'row-main';
    const name = document.createElement('p');
    name.className = 'row-name';
    name.textContent = label;
    const status = document.createElement('p');
    status.className = 'row-status';
    status.textContent = statusText;
    const bar = document.createElement('progress');
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute('aria-label', 'Upload of ' + label);
    main.append(name, status, bar);
    const actions = document.createElement('div');
    actions.className = 'row-actions';
    li.append(main, actions);
    el.uploads.append(li);
    return { li, status, bar, actions };
  }

  function smallButton(text, ariaLabel, onClick) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'button secondary small';
    b.textContent = text;
    b.setAttribute('aria-label', ariaLabel);
    b.addEventListener('click', onClick);
    return b;
  }

  // After a reload (or log-in): the unfinished uploads, each with how much the server has.
  async function showUnfinishedUploads() {
    el.uploads.querySelectorAll('li[data-pending-key]').forEach((li) => li.remove());
    for (const [key, record] of myUploads()) {
      const row = uploadRow(record.name, 'Unfinished upload. Choose the file again to resume.');
      row.li.dataset.pendingKey = key;
      row.li.dataset.state = 'unfinished';
      const discard = smallButton('Discard', 'Discard the unfinished upload of ' + record.name, async () => {
        discard.disabled = true;
        await terminateUpload(record.url);
        forgetUpload(key);
        row.li.remove();
        announce('The unfinished upload of ' + record.name + ' was discarded.');
      });
      row.actions.append(discard);
      try {
        const p = await uploadProgress(record.url);
        if (!p) {
          forgetUpload(key);
          row.li.remove();
          continue;
        }
        const pct = Math.floor((p.offset / Math.max(1, p.length)) * 100);
        row.bar.value = pct;
        row.status.textContent = 'Unfinished upload: ' + pct + ' % of ' + formatBytes(p.length)
          + ' is stored. Choose the file again to resume.';
      } catch (_) { /* keep the row; choosing the file again will tell */ }
    }
  }

  // One PATCH of file[offset, offset + piece) with XHR (fetch has no upload progress).
  function patchPiece(url, file, offset, onProgress, setAbort) {
    return new Promise((resolve) => {
      const end = Math.min(file.size, offset + PIECE_BYTES);
      const xhr = new XMLHttpRequest();
      xhr.open('PATCH', url);
      xhr.setRequestHeader('Authorization', 'Bearer ' + session.token);
      xhr.setRequestHeader('Tus-Resumable', TUS);
      xhr.setRequestHeader('Upload-Offset', String(offset));
      xhr.setRequestHeader('Content-Type', 'application/offset+octet-stream');
      xhr.responseType = 'text';
      xhr.upload.addEventListener('progress', (e) => onProgress(offset + e.loaded));
      xhr.addEventListener('load', () => resolve({ xhr }));
      xhr.addEventListener('error', () => resolve({ network: true }));
      xhr.addEventListener('timeout', () => resolve({ network: true }));
      xhr.addEventListener('abort', () => resolve({ aborted: true }));
      setAbort(() => xhr.abort());
      xhr.send(file.slice(offset, end));
    });
  }

  function xhrErrorText(xhr) {
    let message = '';
    try { message = JSON.parse(xhr.responseText).error.message; } catch (_) { /* not JSON */ }
    return describeError(xhr.status, message, xhr.getResponseHeader('retry-after'));
  }

  async function uploadOne(file) {
    const key = uploadKey(file);
    const pending = Array.from(el.uploads.querySelectorAll('li[data-pending-key]'))
      .find((li) => li.dataset.pendingKey === key);
    if (pending) pending.remove();
    const row = uploadRow(file.name, 'Uploading… 0 %');
    const { li, status, bar, actions } = row;
    let abort = null;
    let cancelled = false;
    const cancel = smallButton('Cancel', 'Cancel the upload of ' + file.name, () => {
      cancelled = true;
      if (abort) abort();
    });
    actions.append(cancel);

    const showProgress = (done, verb) => {
      const pct = Math.floor((done / Math.max(1, file.size)) * 100);
      bar.value = pct;
      status.textContent = (verb || 'Uploading…') + ' ' + pct + ' % of ' + formatBytes(file.size);
    };
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
        actions.append(smallButton('Dismiss', 'Dismiss the message about ' + file.name, () => li.remove()));
      }
      announce(file.name + ': ' + text);
    };
    const stopped = (text) => finish(false, text);

    try {
      // An earlier upload of this very file that the server still has: go on from its offset.
      let record = savedUploads()[key] || null;
      let offset = 0;
      if (record) {
        const p = await uploadProgress(record.url);
        if (p && p.length === file.size) {
          offset = p.offset;
          showProgress(offset, 'Resuming at');
          li.dataset.resumedFrom = String(offset);
        } else {
          forgetUpload(key);
          record = null;
          status.textContent = 'The earlier upload of this file is gone from the server; starting over.';
        }
      }
      if (!record) {
        const meta = { filename: file.name, filetype: file.type || 'application/octet-stream', profile: el.profile.value };
        if (el.loudness.value !== 'off') meta.loudness = el.loudness.value;
        const r = await api('/uploads', {
          method: 'POST',
          headers: tusHeaders({ 'Upload-Length': String(file.size), 'Upload-Metadata': uploadMetadata(meta) }),
        });
        const body = await r.json();
        const location = r.headers.get('location') || body.upload_url;
        record = {
          url: new URL(location, window.location.origin).pathname,
          id: body.id,
          name: file.name,
          size: file.size,
          lastModified: file.lastModified,
          account: session.email,
        };
        rememberUpload(key, record);
      }

      let failures = 0;
      const failed = async (text) => {
        failures += 1;
        if (failures > MAX_TRIES_WITHOUT_PROGRESS) {
          stopped('Upload stopped at ' + Math.floor((offset / file.size) * 100) + ' %: ' + text
            + ' Choose the file again to resume.');
          return false;
        }
        status.textContent = text + ' Retrying…';
        await sleep(FIRST_BACKOFF_MS * 2 ** Math.min(4, failures - 1));
        try {
          const p = await uploadProgress(record.url);
          if (!p) {
            forgetUpload(key);
            stopped('Not uploaded: the server no longer has this upload (it expired). Choose the file again to start over.');
            return false;
          }
          if (p.offset > offset) failures = 0;
          offset = p.offset;
        } catch (_) { /* keep our offset; the next PATCH will tell */ }
        return true;
      };

      while (offset < file.size) {
        const result = await patchPiece(record.url, file, offset, (done) => showProgress(done), (f) => { abort = f; });
        abort = null;
        if (cancelled) {
          await terminateUpload(record.url);
          forgetUpload(key);
          stopped('Upload cancelled.');
          return;
        }
        // Aborted without Cancel: the page is going away (a reload); the record stays, so the
        // upload can be resumed.
        if (result.aborted) return;
        const xhr = result.xhr;
        if (xhr && (xhr.status === 204 || xhr.status === 200)) {
          const next = Number(xhr.getResponseHeader('upload-offset'));
          if (next > offset) failures = 0;
          offset = next;
          showProgress(offset);
          continue;
        }
        if (xhr && xhr.status === 409 && xhr.getResponseHeader('upload-offset') !== null) {
          offset = Number(xhr.getResponseHeader('upload-offset'));
          if (!(await failed('The server had a different part of the file.'))) return;
          continue;
        }
        if (result.network || xhr.status === 423 || xhr.status >= 500) {
          if (!(await failed(result.network ? NETWORK_ERROR : xhrErrorText(xhr)))) return;
          continue;
        }
        // Refused for good (not media, too large, …): nothing of it is worth keeping.
        if (xhr.status === 401) endSession('Your session has ended. Please log in again.');
        await terminateUpload(record.url);
        forgetUpload(key);
        stopped('Not uploaded: ' + xhrErrorText(xhr));
        return;
      }

      // Every byte is stored: the job exists, or (its answer lost, or a 503) the empty PATCH at
      // the end asks the server to create it.
      for (;;) {
        try {
          await api(JOBS + '/' + encodeURIComponent(record.id));
          break;
        } catch (e) {
          if (e.status !== 404 && e.status !== 0 && e.status < 500) throw e;
          if (e.status === 404) {
            const result = await patchPiece(record.url, file, file.size, () => {}, () => {});
            if (result.xhr && result.xhr.status >= 400 && result.xhr.status < 500 && result.xhr.status !== 423) {
              throw new ApiError(result.xhr.status, xhrErrorText(result.xhr));
            }
          }
          if (!(await failed(e.message))) return;
        }
      }
      forgetUpload(key);
      finish(true, 'Uploaded; converting soon.');
      refreshJobs();
    } catch (e) {
      if (e.status === 401) return;
      stopped('Not uploaded: ' + e.message);
    }
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
      const r = await api(JOBS + '?limit=' + PAGE);
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
      const r = await api(JOBS + '/' + encodeURIComponent(id) + '/mp3');
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
      await api(JOBS + '/' + encodeURIComponent(id), { method: 'DELETE' });
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
