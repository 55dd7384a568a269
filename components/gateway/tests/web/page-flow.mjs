// Drives the gateway's web page in headless Debian Chromium the way a person uses it:
// keyboard to the login form, a wrong password (the error in words), create an account (the page
// says to check the inbox), log in too early (refused, with "Send the link again"), open the link
// from the confirmation email (read through Mailpit's API) and press Confirm, log in, log out,
// log in with the keyboard, upload by picking a file and by dropping one (XHR progress), watch
// both jobs finish, download an mp3 and check it, delete; then a resumable (tus) upload of a file
// larger than one PATCH piece, with the page reloaded mid-upload: the page lists the unfinished
// upload, and choosing the same file again goes on from the server's offset, not from 0; an
// unfinished upload discarded after a reload is terminated (DELETE) and forgotten; log out. Screenshots (desktop and
// 375x667) go to the artifacts folder; an axe-core audit must find no WCAG A/AA violation.
//
// The uploads run under DevTools network throttling (UPLOAD_BYTES_PER_S), so the progress bars
// must show values between 0 and 100 on the way, not only the 100 set on success; and the
// video is minutes long (but small), so each job's row must show it converting before done.
//
// usage: VID2MP3_TEST_EMAIL=ADDRESS VID2MP3_MAILPIT_URL=URL node page-flow.mjs BASE_URL VIDEO_FILE ARTIFACTS_DIR BIG_VIDEO_FILE
// (BIG_VIDEO_FILE: a video larger than the page's 8 MiB upload piece, for the resumed upload.)
// (ADDRESS: an address whose mail the test may read on that Mailpit.)
// Exits 0 when every check passed; otherwise prints what failed and exits 1.

import { readFileSync, mkdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const [baseUrl, videoFile, artifacts, bigVideoFile] = process.argv.slice(2);
if (!baseUrl || !videoFile || !artifacts || !bigVideoFile) {
  console.error('usage: node page-flow.mjs BASE_URL VIDEO_FILE ARTIFACTS_DIR BIG_VIDEO_FILE');
  process.exit(2);
}
const executablePath = process.env.VID2MP3_CHROMIUM || '/usr/bin/chromium';
mkdirSync(artifacts, { recursive: true });

const email = process.env.VID2MP3_TEST_EMAIL;
const mailpitUrl = (process.env.VID2MP3_MAILPIT_URL || 'http://127.0.0.1:8025').replace(/\/$/, '');
if (!email) {
  console.error('set VID2MP3_TEST_EMAIL to an address whose mail this test may read on Mailpit');
  process.exit(2);
}
const password = 'correct horse battery staple';
const videoName = path.basename(videoFile);
const droppedName = 'dropped-' + videoName;
// Slow enough that each upload takes seconds (the test video is a few hundred KB).
const UPLOAD_BYTES_PER_S = 192 * 1024;
// The big video's first 8 MiB piece takes seconds at this rate, so the reload comes mid-upload.
const BIG_UPLOAD_BYTES_PER_S = 2 * 1024 * 1024;
const bigVideoName = path.basename(bigVideoFile);
const step = (text) => console.log(`[page] ${text}`);

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  step(`ok: ${what}`);
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const problems = [];
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  page = await context.newPage();
  page.setDefaultTimeout(20000);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // A refused API call is logged by Chromium as "Failed to load resource"; the page shows it.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
      problems.push(`console error: ${m.text()}`);
    }
  });
  page.on('dialog', (d) => d.accept());

  // ---- the page and its headers ----
  const response = await page.goto(baseUrl + '/');
  check(response.status() === 200, 'GET / answers 200');
  const headers = response.headers();
  check((headers['content-type'] || '').startsWith('text/html'), 'the page is text/html');
  check((headers['content-security-policy'] || '').includes("default-src 'self'"), 'the page has a strict CSP');
  check(await page.title() !== '', 'the page has a title');

  // ---- keyboard: Tab reaches the login fields and buttons, focus is visible ----
  const emailField = page.getByLabel('Email', { exact: true });
  const passwordField = page.getByLabel('Password', { exact: true });
  const logInButton = page.getByRole('button', { name: 'Log in' });
  const signUpButton = page.getByRole('button', { name: 'Create account' });
  const reached = [];
  for (let i = 0; i < 8; i += 1) {
    await page.keyboard.press('Tab');
    const info = await page.evaluate(() => {
      const a = document.activeElement;
      const style = getComputedStyle(a);
      return {
        id: a.id,
        text: (a.textContent || '').trim(),
        tag: a.tagName,
        outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
      };
    });
    reached.push(info);
  }
  const at = (pred) => reached.find(pred);
  check(at((r) => r.text === 'Skip to the main content'), 'Tab reaches the skip link first');
  for (const [what, pred] of [
    ['the Email field', (r) => r.id === 'email'],
    ['the Password field', (r) => r.id === 'password'],
    ['the Log in button', (r) => r.tag === 'BUTTON' && r.text === 'Log in'],
    ['the Create account button', (r) => r.tag === 'BUTTON' && r.text === 'Create account'],
  ]) {
    const r = at(pred);
    check(r, `Tab reaches ${what}`);
    check(r.outline, `${what} shows a visible focus outline`);
  }
  await axeAudit('the login view');

  // ---- a wrong password is explained in words ----
  await emailField.fill(email);
  await passwordField.fill('not the password at all');
  await logInButton.click();
  const alert = page.locator('#auth-error');
  await alert.waitFor({ state: 'visible' });
  const alertText = await alert.textContent();
  check(/email or password is wrong/i.test(alertText), `a failed log in says why: "${alertText}"`);

  // ---- create an account: check your inbox; too early to log in; confirm; log in ----
  await passwordField.fill(password);
  await signUpButton.click();
  const notice = page.locator('#auth-notice');
  await notice.waitFor({ state: 'visible' });
  check(/check your inbox/i.test(await notice.textContent()), 'creating an account says to check the inbox');
  await passwordField.fill(password);
  await logInButton.click();
  await page.locator('#auth-error').getByText(/confirm your email address first/i).waitFor();
  check(true, 'logging in before confirming says to confirm first');
  const resend = page.getByRole('button', { name: 'Send the link again' });
  check(await resend.isVisible(), 'a refused log in offers another link');
  await resend.click();
  await notice.getByText(/new link is on its way/i).waitFor();
  check(true, 'another link was asked for');
  const link = await confirmationLink(email, 2);
  // The link names the configured public URL; the test's server listens elsewhere.
  const confirmUrl = baseUrl + '/confirm' + link.slice(link.indexOf('#'));
  await page.goto(confirmUrl);
  await page.getByRole('heading', { name: 'Confirm your email address' }).waitFor();
  check(await emailField.isHidden(), 'the link opens the confirmation view, not the form');
  await axeAudit('the confirmation view');
  await page.getByRole('button', { name: 'Confirm my address' }).click();
  await notice.getByText(/is confirmed/i).waitFor();
  check(page.url() === baseUrl + '/', 'the spent token leaves the address bar');
  check(await emailField.inputValue() === email, 'the confirmed address is filled in');
  await passwordField.fill(password);
  await logInButton.click();
  await page.getByRole('heading', { name: 'My conversions' }).waitFor();
  check(await page.getByText(`Signed in as ${email}`).isVisible(), 'signed in after confirming the address');
  check(await page.evaluate(() => !!sessionStorage.getItem('vid2mp3.session')), 'the token is kept in sessionStorage');
  await page.getByRole('button', { name: 'Log out' }).click();
  await emailField.waitFor({ state: 'visible' });
  check(await page.evaluate(() => sessionStorage.getItem('vid2mp3.session') === null), 'log out forgets the token');
  await emailField.fill('');
  await emailField.focus();
  await page.keyboard.type(email);
  await page.keyboard.press('Tab');
  await page.keyboard.type(password);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'My conversions' }).waitFor();
  check(true, 'logged in with the keyboard (Enter submits)');
  await page.reload();
  await page.getByRole('heading', { name: 'My conversions' }).waitFor();
  check(true, 'the session survives a reload of the tab');

  // ---- upload: pick a file, and drop one ----
  // Record the XHR upload progress events the page's bars follow, and every state the job rows
  // show (status, conversion progress), as the page changes them.
  await page.evaluate(() => {
    window.__uploadProgress = [];
    window.__uploadTexts = [];
    window.__uploadStates = {};
    const bars = new MutationObserver(() => {
      document.querySelectorAll('#uploads progress').forEach((p) => window.__uploadProgress.push(p.value));
      document.querySelectorAll('#uploads .row-status').forEach((t) => window.__uploadTexts.push(t.textContent));
      document.querySelectorAll('#uploads li[data-state]').forEach((li) => {
        window.__uploadStates[li.querySelector('.row-name').textContent] = li.dataset.state + ': ' + li.querySelector('.row-status').textContent;
      });
    });
    bars.observe(document.getElementById('uploads'), { subtree: true, attributes: true, childList: true, characterData: true });
    window.__jobStates = {}; // job id -> [{status, percent, text}] in the order shown
    const rows = new MutationObserver(() => {
      document.querySelectorAll('#jobs li[data-job-id]').forEach((li) => {
        const bar = li.querySelector('progress');
        const seen = { status: li.dataset.status, percent: bar && !bar.hidden ? bar.value : null, text: li.querySelector('.row-status').textContent };
        const list = window.__jobStates[li.dataset.jobId] || (window.__jobStates[li.dataset.jobId] = []);
        const last = list[list.length - 1];
        if (!last || last.status !== seen.status || last.percent !== seen.percent) list.push(seen);
      });
    });
    rows.observe(document.getElementById('jobs'), { subtree: true, attributes: true, childList: true, characterData: true });
  });
  // Throttle uploads through DevTools, as on a slow connection: on loopback an upload is one
  // instant 100 % otherwise.
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: UPLOAD_BYTES_PER_S,
  });
  await page.getByLabel('Choose video files').setInputFiles(videoFile);
  const video = readFileSync(videoFile).toString('base64');
  await page.evaluate(({ b64, name }) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], name, { type: 'video/x-matroska' }));
    const zone = document.getElementById('drop-zone');
    for (const type of ['dragenter', 'dragover', 'drop']) {
      zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
    }
  }, { b64: video, name: droppedName });
  await page.waitForFunction(() => Object.keys(window.__uploadStates).length === 2, null, { timeout: 60000 });
  const states = await page.evaluate(() => window.__uploadStates);
  check(Object.values(states).every((s) => s.startsWith('uploaded')), `both uploads are accepted: ${JSON.stringify(states)}`);
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1,
  });
  const seenProgress = await page.evaluate(() => window.__uploadProgress);
  check(seenProgress.some((v) => v === 100), `upload progress bars reached 100 % (${seenProgress.length} updates)`);
  const between = [...new Set(seenProgress.filter((v) => v > 0 && v < 100))];
  check(between.length > 0, `upload progress bars showed values on the way: ${JSON.stringify(between)}`);
  const texts = await page.evaluate(() => window.__uploadTexts);
  const partway = texts.find((t) => /^Uploading… ([1-9]|[1-9][0-9]) % of /.test(t));
  check(partway, `an upload's status said how far it was: "${partway}"`);

  // ---- the list follows conversion to the end ----
  const row = (name) => page.locator('#jobs li', { has: page.locator('.row-name', { hasText: new RegExp(`^${name.replace(/[.]/g, '\\.')}$`) }) });
  const picked = row(videoName);
  const dropped = row(droppedName);
  const seenStatuses = new Set();
  const deadline = Date.now() + 120000;
  for (;;) {
    const s = await page.locator('#jobs li').evaluateAll((lis) => lis.map((li) => li.dataset.status));
    s.forEach((x) => seenStatuses.add(x));
    if (s.length === 2 && s.every((x) => x === 'done' || x === 'failed')) break;
    if (Date.now() > deadline) throw new Error(`the jobs did not finish within 120 s: ${JSON.stringify(s)}`);
    await page.waitForTimeout(250);
  }
  step(`statuses seen in the list: ${[...seenStatuses].join(', ')}`);
  // Each job's row showed it converting (with its progress bar) before it was done.
  const jobStates = await page.evaluate(() => window.__jobStates);
  check(Object.keys(jobStates).length === 2, `the list showed two jobs (${Object.keys(jobStates).length})`);
  for (const [id, shown] of Object.entries(jobStates)) {
    const statuses = shown.map((x) => x.status);
    const converting = statuses.indexOf('converting');
    const done = statuses.indexOf('done');
    const percents = shown.filter((x) => x.status === 'converting').map((x) => x.percent);
    check(converting >= 0 && done > converting && percents.every((p) => p !== null && p >= 0 && p < 100),
      `job ${id} was shown converting (progress ${JSON.stringify(percents)} %) before done: ${statuses.join(' → ')}`);
  }
  for (const [name, r] of [[videoName, picked], [droppedName, dropped]]) {
    const status = await r.getAttribute('data-status');
    check(status === 'done', `${name} is done (the row says: "${(await r.locator('.row-status').textContent())}")`);
  }
  const announcer = await page.locator('#announcer').textContent();
  step(`last announcement: "${announcer}"`);
  await page.screenshot({ path: path.join(artifacts, 'web-page.png'), fullPage: true });
  step(`screenshot: ${path.join(artifacts, 'web-page.png')}`);
  await axeAudit('the signed-in view with finished jobs');

  // ---- the account's webhook ----
  const webhookUrl = page.getByLabel('Callback URL');
  await webhookUrl.fill('http://hooks.example.com/vid2mp3');
  await page.getByRole('button', { name: 'Save webhook' }).click();
  await page.locator('#webhook-error').getByText(/must use https/i).waitFor();
  step('ok: a plain http callback is refused with the reason');
  await webhookUrl.fill('https://hooks.example.com/vid2mp3');
  await page.getByRole('button', { name: 'Save webhook' }).click();
  await page.locator('#webhook-secret').getByText(/not shown again/i).waitFor();
  const secret = await page.locator('#webhook-secret code').textContent();
  check(/^whsec_/.test(secret), 'the signing secret is shown once saved');
  check(await page.locator('#webhook-error').isHidden(), 'no error once saved');
  await page.getByRole('button', { name: 'Remove webhook' }).click();
  await page.getByRole('button', { name: 'Remove webhook' }).waitFor({ state: 'hidden' });
  check(await webhookUrl.inputValue() === '' && await page.locator('#webhook-secret').isHidden(),
    'removing the webhook clears the form and the secret');

  // ---- a phone-sized screen ----
  await page.setViewportSize({ width: 375, height: 667 });
  await page.waitForTimeout(200);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `nothing sticks out sideways at 375 px (overflow ${overflow} px)`);
  const buttonBox = await picked.getByRole('button', { name: /^Download mp3 of/ }).boundingBox();
  check(buttonBox && buttonBox.height >= 40 && buttonBox.x >= 0 && buttonBox.x + buttonBox.width <= 375,
    `the download button is a large target inside the screen (${JSON.stringify(buttonBox)})`);
  await page.screenshot({ path: path.join(artifacts, 'web-page-phone.png'), fullPage: true });
  step(`screenshot: ${path.join(artifacts, 'web-page-phone.png')}`);
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.emulateMedia({ colorScheme: 'dark' });
  await axeAudit('the signed-in view in dark mode');
  await page.screenshot({ path: path.join(artifacts, 'web-page-dark.png'), fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });

  // ---- download the mp3 (fetch with the token -> blob -> save) ----
  const downloadButton = picked.getByRole('button', { name: `Download mp3 of ${videoName}` });
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 30000 }), downloadButton.click()]);
  const saved = path.join(artifacts, 'web-page-download.mp3');
  await download.saveAs(saved);
  const mp3 = readFileSync(saved);
  const suggested = download.suggestedFilename();
  check(suggested.endsWith('.mp3'), `the download is named ${suggested}`);
  const id3 = mp3.subarray(0, 3).toString('latin1') === 'ID3';
  const sync = mp3.length > 1 && mp3[0] === 0xff && (mp3[1] & 0xe0) === 0xe0;
  check(statSync(saved).size > 0 && (id3 || sync), `the download is an mp3 (${mp3.length} bytes, ${id3 ? 'ID3 tag' : 'frame sync'})`);

  // ---- delete both (the confirm dialog is accepted) ----
  await picked.getByRole('button', { name: `Delete ${videoName}` }).click();
  await picked.waitFor({ state: 'detached' });
  await dropped.getByRole('button', { name: `Delete ${droppedName}` }).click();
  await dropped.waitFor({ state: 'detached' });
  await page.getByText('No conversions yet').waitFor();
  const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('vid2mp3.session')).token);
  const list = await (await fetch(baseUrl + '/api/v1/jobs', { headers: { Authorization: `Bearer ${token}` } })).json();
  check(list.jobs.length === 0, 'the API lists no jobs after deleting them in the page');

  // ---- a resumable upload: reload mid-upload, choose the same file again, go on from the server's offset ----
  const isUpload = (req) => new URL(req.url()).pathname.startsWith('/api/v1/uploads/');
  const patches = []; // the Upload-Offset of every PATCH the page sends, in order
  const answers = []; // {method, status, offset} of every answer to a PATCH or DELETE of an upload
  page.on('request', (req) => {
    if (req.method() === 'PATCH' && isUpload(req)) patches.push(Number(req.headers()['upload-offset']));
  });
  page.on('response', (res) => {
    const req = res.request();
    if ((req.method() === 'PATCH' || req.method() === 'DELETE') && isUpload(req)) {
      answers.push({ method: req.method(), status: res.status(), offset: Number(res.headers()['upload-offset']) });
    }
  });
  const throttle = (bytesPerS) => cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerS,
  });
  const savedUploads = () => page.evaluate(() => JSON.parse(localStorage.getItem('vid2mp3.uploads') || '{}'));
  await throttle(BIG_UPLOAD_BYTES_PER_S);
  await page.getByLabel('Choose video files').setInputFiles(bigVideoFile);
  // Reload once the first piece is stored (an offset > 0 on the server) and the next is on its way.
  const firstPiece = Date.now() + 60000;
  while (!answers.some((a) => a.method === 'PATCH' && a.status === 204 && a.offset > 0)) {
    if (Date.now() > firstPiece) throw new Error(`no piece of ${bigVideoName} was stored within 60 s: ${JSON.stringify(answers)}`);
    await page.waitForTimeout(100);
  }
  const records = Object.values(await savedUploads());
  check(records.length === 1 && records[0].name === bigVideoName && !JSON.stringify(records).includes(token),
    `the unfinished upload is remembered in localStorage, without the token: ${JSON.stringify(records)}`);
  await page.reload();
  await page.getByRole('heading', { name: 'My conversions' }).waitFor();
  await throttle(-1);
  const unfinished = page.locator('#uploads li[data-state="unfinished"]', { hasText: bigVideoName });
  await unfinished.getByText(/% of .* is stored\. Choose the file again to resume\./).waitFor();
  step(`after the reload the page says: "${await unfinished.locator('.row-status').textContent()}"`);
  const head = await fetch(new URL(records[0].url, baseUrl), {
    method: 'HEAD', headers: { Authorization: `Bearer ${token}`, 'Tus-Resumable': '1.0.0' },
  });
  const stored = Number(head.headers.get('upload-offset'));
  check(head.status === 200 && stored > 0 && stored < statSync(bigVideoFile).size,
    `the server has part of the file after the reload (${stored} bytes)`);
  const sentBefore = patches.length;
  await page.getByLabel('Choose video files').setInputFiles(bigVideoFile);
  await page.waitForFunction((name) => Array.from(document.querySelectorAll('#uploads li[data-state]'))
    .some((li) => li.querySelector('.row-name').textContent === name && ['uploaded', 'failed'].includes(li.dataset.state)),
  bigVideoName, { timeout: 60000 });
  const resumedState = await page.evaluate((name) => Array.from(document.querySelectorAll('#uploads li[data-state]'))
    .filter((li) => li.querySelector('.row-name').textContent === name)
    .map((li) => li.dataset.state + ': ' + li.querySelector('.row-status').textContent), bigVideoName);
  check(resumedState.some((x) => x.startsWith('uploaded')), `the resumed upload finished: ${JSON.stringify(resumedState)}`);
  const resumedPatches = patches.slice(sentBefore);
  check(resumedPatches.length > 0 && resumedPatches[0] === stored && resumedPatches.every((o) => o >= stored),
    `choosing the file again went on from the server's offset ${stored}, not from 0 (PATCH offsets ${JSON.stringify(resumedPatches)})`);
  check(Object.keys(await savedUploads()).length === 0, 'a finished upload is forgotten');
  const big = row(bigVideoName);
  const bigDeadline = Date.now() + 90000;
  while ((await big.getAttribute('data-status').catch(() => null)) !== 'done') {
    if (Date.now() > bigDeadline) throw new Error(`${bigVideoName} was not converted within 90 s`);
    await page.waitForTimeout(250);
  }
  check(true, `${bigVideoName}, resumed after a reload, is converted`);
  await big.getByRole('button', { name: `Delete ${bigVideoName}` }).click();
  await big.waitFor({ state: 'detached' });

  // ---- an unfinished upload discarded after a reload is removed from the server too ----
  await throttle(16 * 1024);
  await page.getByLabel('Choose video files').setInputFiles(videoFile);
  await page.waitForFunction(() => Object.keys(JSON.parse(localStorage.getItem('vid2mp3.uploads') || '{}')).length === 1, null, { timeout: 20000 });
  const [discardRecord] = Object.values(await savedUploads());
  await page.reload();
  await page.getByRole('heading', { name: 'My conversions' }).waitFor();
  await throttle(-1);
  await page.getByRole('button', { name: `Discard the unfinished upload of ${videoName}` }).click();
  await page.locator('#uploads li[data-state="unfinished"]').waitFor({ state: 'detached' });
  check(answers.some((a) => a.method === 'DELETE' && a.status === 204), 'discarding sends the termination (DELETE, 204)');
  check(Object.keys(await savedUploads()).length === 0, 'a discarded upload is forgotten');
  const gone = await fetch(new URL(discardRecord.url, baseUrl), {
    method: 'HEAD', headers: { Authorization: `Bearer ${token}`, 'Tus-Resumable': '1.0.0' },
  });
  check(gone.status === 404, `the server no longer has the discarded upload (HEAD ${gone.status})`);
  await page.getByText('No conversions yet').waitFor();

  await page.getByRole('button', { name: 'Log out' }).click();
  await emailField.waitFor({ state: 'visible' });
  check(true, 'logged out');

  // ---- delete the account: a wrong password deletes nothing; the right one ends it all ----
  await emailField.fill(email);
  await passwordField.fill(password);
  await logInButton.click();
  await page.getByText('No conversions yet').waitFor();
  const deletePassword = page.getByLabel('Your password');
  const deleteButton = page.getByRole('button', { name: 'Delete my account' });
  await deletePassword.fill(password);
  await deleteButton.click();
  const deleteError = page.locator('#delete-account-error');
  await deleteError.getByText(/tick the box/i).waitFor();
  check(true, 'deleting without ticking the box is refused in words');
  await page.getByLabel(/I understand/).check();
  await deletePassword.fill('not the password at all');
  await deleteButton.click();
  await deleteError.getByText(/password is wrong; nothing was deleted/i).waitFor();
  check(true, 'a wrong password deletes nothing and says so');
  await deletePassword.fill(password);
  await deleteButton.click();
  await page.locator('#auth-error').getByText(/account and everything of it were deleted/i).waitFor();
  check(await emailField.isVisible(), 'deleting the account ends the session');
  await emailField.fill(email);
  await passwordField.fill(password);
  await logInButton.click();
  await page.locator('#auth-error').getByText(/email or password is wrong/i).waitFor();
  check(true, 'the deleted account cannot log in');
} catch (e) {
  problems.push(e.stack || String(e));
  if (page) {
    const failed = path.join(artifacts, 'web-page-failure.png');
    await page.screenshot({ path: failed, fullPage: true }).catch(() => {});
    console.error(`[page] a screenshot of the failure: ${failed}`);
  }
} finally {
  await browser.close();
}

// The newest confirmation link sent to `to`, once `count` confirmation emails have arrived.
async function confirmationLink(to, count) {
  const deadline = Date.now() + 30000;
  for (;;) {
    const query = encodeURIComponent(`to:"${to}" subject:"Confirm your email address"`);
    const found = await (await fetch(`${mailpitUrl}/api/v1/search?query=${query}`)).json();
    if (found.messages && found.messages.length >= count) {
      const newest = await (await fetch(`${mailpitUrl}/api/v1/message/${found.messages[0].ID}`)).json();
      const m = /https?:\/\/\S+\/confirm#token=[A-Za-z0-9_-]+/.exec(newest.Text);
      if (!m) throw new Error(`no confirmation link in: ${newest.Text}`);
      return m[0];
    }
    if (Date.now() > deadline) {
      throw new Error(`${(found.messages || []).length} confirmation email(s) reached ${to} in 30 s, expected ${count}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function axeAudit(what) {
  // The buttons' colours fade over 120 ms: audit the colours the page settles on, not a frame
  // in between (a loaded machine can otherwise catch a fade half-way).
  await page.evaluate(() => Promise.all(document.getAnimations().map((a) => a.finished)));
  // page.evaluate runs through DevTools, so axe needs no exception in the page's CSP.
  const source = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  await page.evaluate(source);
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] },
    });
    return r.violations.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  });
  if (result.length) problems.push(`accessibility (${what}):\n  ${result.join('\n  ')}`);
  else step(`ok: axe-core finds no WCAG 2 A/AA violation in ${what}`);
}

if (problems.length) {
  console.error(`[page] FAILED:\n${problems.join('\n')}`);
  process.exit(1);
}
console.log('[page] all checks passed');
