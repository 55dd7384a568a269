// Drives the gateway's web page in headless Debian Chromium the way a person uses it:
// keyboard to the login form, a wrong password (the error in words), create an account, log out,
// log in with the keyboard, upload by picking a file and by dropping one (XHR progress), watch
// both jobs finish, download an mp3 and check it, delete, log out. Screenshots (desktop and
// 375x667) go to the artifacts folder; an axe-core audit must find no WCAG A/AA violation.
//
// usage: node page-flow.mjs BASE_URL VIDEO_FILE ARTIFACTS_DIR
// Exits 0 when every check passed; otherwise prints what failed and exits 1.

import { readFileSync, mkdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const [baseUrl, videoFile, artifacts] = process.argv.slice(2);
if (!baseUrl || !videoFile || !artifacts) {
  console.error('usage: node page-flow.mjs BASE_URL VIDEO_FILE ARTIFACTS_DIR');
  process.exit(2);
}
const executablePath = process.env.VID2MP3_CHROMIUM || '/usr/bin/chromium';
mkdirSync(artifacts, { recursive: true });

const email = `web-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
const password = 'correct horse battery staple';
const videoName = path.basename(videoFile);
const droppedName = 'dropped-' + videoName;
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
  const emailField = page.getByLabel('Email');
  const passwordField = page.getByLabel('Password');
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

  // ---- create an account (logs in), log out, log in with the keyboard ----
  await passwordField.fill(password);
  await signUpButton.click();
  await page.getByRole('heading', { name: 'My conversions' }).waitFor();
  check(await page.getByText(`Signed in as ${email}`).isVisible(), 'signed in after creating the account');
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
  // Record the XHR upload progress events the page's bars follow.
  await page.evaluate(() => {
    window.__uploadProgress = [];
    window.__uploadStates = {};
    const bars = new MutationObserver(() => {
      document.querySelectorAll('#uploads progress').forEach((p) => window.__uploadProgress.push(p.value));
      document.querySelectorAll('#uploads li[data-state]').forEach((li) => {
        window.__uploadStates[li.querySelector('.row-name').textContent] = li.dataset.state + ': ' + li.querySelector('.row-status').textContent;
      });
    });
    bars.observe(document.getElementById('uploads'), { subtree: true, attributes: true, childList: true });
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
  const seenProgress = await page.evaluate(() => window.__uploadProgress);
  check(seenProgress.some((v) => v === 100), `upload progress bars reached 100 % (${seenProgress.length} updates)`);

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
  for (const [name, r] of [[videoName, picked], [droppedName, dropped]]) {
    const status = await r.getAttribute('data-status');
    check(status === 'done', `${name} is done (the row says: "${(await r.locator('.row-status').textContent())}")`);
  }
  const announcer = await page.locator('#announcer').textContent();
  step(`last announcement: "${announcer}"`);
  await page.screenshot({ path: path.join(artifacts, 'web-page.png'), fullPage: true });
  step(`screenshot: ${path.join(artifacts, 'web-page.png')}`);
  await axeAudit('the signed-in view with finished jobs');

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

  await page.getByRole('button', { name: 'Log out' }).click();
  await emailField.waitFor({ state: 'visible' });
  check(true, 'logged out');
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
