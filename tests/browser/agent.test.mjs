// The ukey agent in a real browser: Debian's Chromium, headless, driven by playwright-core.
//
// A soft token with a CA-issued certificate is made with the ukey CLI and OpenSSL. The page never
// sees a PIN: the agent asks for it itself through its pinentry. Here that pinentry is
// `ukey-pinentry-script` (src/bin/ukey-pinentry-script.rs), a SCRIPT standing in for the holder:
// a small program that speaks the real Assuan protocol of the pinentry programs, answers from a
// file and logs which dialogs it was shown. A headless browser run has no terminal or display for
// Debian's pinentry programs; tests/agent_pinentry_tty.rs runs the same agent path with Debian's
// real pinentry-tty on a pseudo-terminal.
//
// A page from a development origin pairs, lists certificates, signs and verifies the signature
// (in the page with WebCrypto, and here with Node's crypto, OpenSSL and `ukey verify`), and runs
// an authentication round; a second origin that is not paired is refused; the agent's own demo
// page does the same through its buttons and shows insertions live.
//
// Run by scripts/suites/50-browser.sh (which builds ukey and installs playwright-core), or:
//   UKEY_BIN=target/debug/ukey UKEY_PINENTRY=target/debug/ukey-pinentry-script node --test tests/browser/

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { X509Certificate, verify as nodeVerify } from 'node:crypto';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const UKEY = process.env.UKEY_BIN ?? join(repo, 'target/debug/ukey');
const PINENTRY = process.env.UKEY_PINENTRY ?? join(repo, 'target/debug/ukey-pinentry-script');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const PIN = 'S3ntinel-7391';
const SO_PIN = 'so-pin-4242';
const DEADLINE_MS = 30_000;

for (const [what, path, fix] of [
  ['chromium', CHROMIUM, 'apt-get install chromium'],
  ['ukey', UKEY, 'cargo build --bin ukey'],
  ['ukey-pinentry-script', PINENTRY, 'cargo build --bin ukey-pinentry-script'],
]) {
  if (!existsSync(path)) throw new Error(`${what} is missing at ${path}: ${fix}`);
}

const dir = mkdtempSync(join(tmpdir(), 'ukey-browser-'));
const env = {
  PATH: process.env.PATH,
  HOME: dir,
  XDG_RUNTIME_DIR: join(dir, 'run'),
  XDG_DATA_HOME: join(dir, 'data'),
  XDG_CONFIG_HOME: join(dir, 'config'),
  UKEY_SOFT_DIR: join(dir, 'soft'),
  // Only the soft token: a machine-wide SoftHSM2 or PC/SC reader must not add carriers.
  UKEY_DRIVERS: 'soft',
};
const script = join(dir, 'pinentry-script');
const dialogs = join(dir, 'pinentry-log.jsonl');
let agent;
let agentLog = '';
let agentPort;
let servers = [];
let context;

function ukey(args, extraEnv = {}, stdio = undefined) {
  return execFileSync(UKEY, args, { env: { ...env, ...extraEnv }, encoding: 'utf8', stdio });
}

/** An ECDSA signature as raw r||s (IEEE P1363) re-encoded as the DER SEQUENCE OpenSSL reads. */
function p1363ToDer(raw) {
  const integer = (bytes) => {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i++;
    let b = bytes.subarray(i);
    if (b[0] & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
    return Buffer.concat([Buffer.from([0x02, b.length]), b]);
  };
  const half = raw.length / 2;
  const body = Buffer.concat([integer(raw.subarray(0, half)), integer(raw.subarray(half))]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

function answers(lines) {
  writeFileSync(script, lines.join('\n') + '\n');
}

function shownDialogs() {
  if (!existsSync(dialogs)) return [];
  return readFileSync(dialogs, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/**
 * OpenSSL and `ukey verify` check a raw r||s P-256 signature of `data` from files, with the
 * certificate `certPem`, and both refuse it for other data.
 */
function verifyWithTools(name, raw, data, certPem) {
  const f = (suffix) => join(dir, `${name}-${suffix}`);
  const cert = new X509Certificate(certPem);
  writeFileSync(f('signed.txt'), data);
  writeFileSync(f('tampered.txt'), `${data}!`);
  writeFileSync(f('cert.pem'), certPem);
  writeFileSync(f('sig.raw'), raw);
  writeFileSync(f('sig.der'), p1363ToDer(raw));
  writeFileSync(f('pub.pem'), cert.publicKey.export({ type: 'spki', format: 'pem' }));
  const openssl = (file) => execFileSync('openssl', ['dgst', '-sha256', '-verify', f('pub.pem'), '-signature',
    f('sig.der'), file], { encoding: 'utf8', stdio: 'pipe' });
  assert.match(openssl(f('signed.txt')), /Verified OK/, 'openssl verifies the signature');
  assert.throws(() => openssl(f('tampered.txt')), 'openssl refuses the signature for other data');
  ukey(['verify', '--cert', f('cert.pem'), '--sig', f('sig.raw'), '--in', f('signed.txt')], {}, 'pipe');
  assert.throws(() => ukey(['verify', '--cert', f('cert.pem'), '--sig', f('sig.raw'), '--in', f('tampered.txt')], {},
    'pipe'), '`ukey verify` refuses the signature for other data');
}

/** A development web server for one origin: an empty page and ukey.js. */
function devServer() {
  const js = readFileSync(join(repo, 'web/ukey.js'));
  const server = createServer((req, res) => {
    if (req.url === '/ukey.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(js);
    } else {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>dev page</title><p>dev page</p>');
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

before(async () => {
  // A soft token with a P-256 key and a certificate issued by a demo CA.
  const pins = { UKEY_SO_PIN: SO_PIN, UKEY_PIN: PIN, UKEY_NEW_PIN: PIN };
  ukey(['token', 'init', '--soft', '--label', 'Alice'], pins);
  ukey(['keygen', '--alg', 'p256', '--label', 'Alice'], pins);
  ukey(['csr', '--key', 'Alice', '--subject', 'CN=Alice Browser', '--out', join(dir, 'alice.csr')], pins);
  const ssl = (args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key']);
  ssl(['req', '-new', '-x509', '-key', 'ca.key', '-subj', '/CN=Browser Test CA', '-days', '30', '-out', 'ca.pem']);
  ssl(['x509', '-req', '-in', 'alice.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '30', '-out', 'alice.pem']);
  ukey(['cert', 'import', join(dir, 'alice.pem')], pins);

  answers([]);
  agent = spawn(UKEY, ['agent', '--port', '0', '--dev', '-vvv', '--pinentry', PINENTRY,
    '--pinentry-arg=--script', `--pinentry-arg=${script}`, '--pinentry-arg=--log', `--pinentry-arg=${dialogs}`],
  { env, stdio: ['ignore', 'pipe', 'pipe'] });
  agent.stderr.on('data', (d) => { agentLog += d; });
  agentPort = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the agent did not start:\n${agentLog}`)), DEADLINE_MS);
    let out = '';
    agent.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/http:\/\/127\.0\.0\.1:(\d+)\//);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    agent.on('exit', (code) => reject(new Error(`the agent exited (${code}):\n${agentLog}`)));
  });
  servers = [await devServer(), await devServer()];
  context = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await context?.close();
  for (const s of servers) s.close();
  agent?.kill('SIGTERM');
  assert.ok(!agentLog.includes(PIN), 'the PIN never appears in the agent log');
  rmSync(dir, { recursive: true, force: true });
});

const origin = (i) => `http://127.0.0.1:${servers[i].address().port}`;

test('a paired development origin lists, signs, verifies and logs in', async () => {
  answers(['ok', `pin ${PIN}`, `pin ${PIN}`]);
  const page = await context.newPage();
  await page.goto(`${origin(0)}/`);
  const r = await page.evaluate(async (port) => {
    const { UkeyClient, verifySignature, verifyAuthToken, newNonce, toBase64 } = await import('/ukey.js');
    const c = await UkeyClient.connect({ url: `ws://127.0.0.1:${port}/rpc`, clientName: 'browser test' });
    const pairedBefore = c.paired;
    await c.pair();
    const certs = await c.listCertificates();
    const data = 'signed in Chromium';
    const sig = await c.sign({ cert: certs[0].handle, data });
    const verified = await verifySignature({ certificate: sig.certificate, data, signature: sig.signature, mechanism: sig.mechanism });
    const nonce = newNonce();
    const token = await c.authenticate({ cert: certs[0].handle, nonce });
    await verifyAuthToken(token, { origin: location.origin, nonce });
    let forged = false;
    try { await verifyAuthToken(token, { origin: 'https://evil.example', nonce }); forged = true; } catch { /* refused */ }
    return { pairedBefore, paired: c.paired, subjects: certs.map((x) => x.subject), verified, mechanism: sig.mechanism,
      signature: toBase64(sig.signature), certificate: toBase64(sig.certificate), tokenOrigin: token.origin, forged };
  }, agentPort);
  assert.equal(r.pairedBefore, false);
  assert.equal(r.paired, true);
  assert.deepEqual(r.subjects, ['CN=Alice Browser']);
  assert.equal(r.verified, true, 'WebCrypto verifies the signature in the page');
  assert.equal(r.tokenOrigin, origin(0));
  assert.equal(r.forged, false, 'a token does not verify for another origin');
  // Node checks the same signature with the certificate's key (raw r||s = IEEE P1363).
  const cert = new X509Certificate(Buffer.from(r.certificate, 'base64'));
  const raw = Buffer.from(r.signature, 'base64');
  assert.ok(nodeVerify('sha256', Buffer.from('signed in Chromium'), { key: cert.publicKey, dsaEncoding: 'ieee-p1363' },
    raw));
  verifyWithTools('dev-page', raw, 'signed in Chromium', cert.toString());
  const shown = shownDialogs();
  assert.equal(shown[0].command, 'GETPIN', 'pairing takes typing the code the dialog shows, not a button');
  assert.equal(shown[0].answer, 'code');
  assert.ok(shown[0].description.includes(origin(0)), 'the pairing dialog names the origin');
  assert.ok(shown[1].description.includes('CN=Alice Browser'), 'the PIN dialog names the certificate');
  await page.close();
});

test('a second origin that is not paired is refused', async () => {
  answers(['no']);
  const page = await context.newPage();
  await page.goto(`${origin(1)}/`);
  const r = await page.evaluate(async (port) => {
    const { UkeyClient } = await import('/ukey.js');
    const c = await UkeyClient.connect({ url: `ws://127.0.0.1:${port}/rpc` });
    const out = { paired: c.paired };
    try { await c.listCertificates(); } catch (e) { out.list = e.name; }
    try { await c.sign({ cert: 'x#01', data: 'x' }); } catch (e) { out.sign = e.name; }
    try { await c.pair(); } catch (e) { out.pair = e.name; }
    try { await c.listTokens(); } catch (e) { out.after = e.name; }
    try { await c.call('sign', { cert: 'x#01', data: 'eA==', pin: '1234' }); } catch (e) { out.pin = e.name; }
    return out;
  }, agentPort);
  assert.deepEqual(r, { paired: false, list: 'NotPaired', sign: 'NotPaired', pair: 'UserCancelled', after: 'NotPaired', pin: 'Forbidden' });
  await page.close();
});

test("the agent's demo page pairs, signs, logs in and shows insertions", async () => {
  answers(['ok', `pin ${PIN}`, `pin ${PIN}`]);
  const page = await context.newPage();
  await page.goto(`http://127.0.0.1:${agentPort}/`);
  await page.getByText('Pair this page').click();
  await page.getByText('CN=Alice Browser').waitFor({ timeout: DEADLINE_MS });
  await page.getByText('Sign with the selected certificate').click();
  await page.locator('#sign-verdict').getByText('signature verified ✓').waitFor({ timeout: DEADLINE_MS });
  // The signature the demo page shows verifies outside the browser too.
  const shownSig = Buffer.from((await page.locator('#signature .mono').textContent()).trim(), 'base64');
  const signedText = await page.locator('#text').inputValue();
  verifyWithTools('demo-page', shownSig, signedText, readFileSync(join(dir, 'alice.pem'), 'utf8'));
  await page.getByText('Authenticate with the selected certificate').click();
  await page.locator('#authresult').getByText('verified ✓').waitFor({ timeout: DEADLINE_MS });
  // Plug in a second carrier: the page shows the event and the new carrier.
  ukey(['token', 'init', '--soft', '--label', 'Bob'], { UKEY_SO_PIN: SO_PIN, UKEY_PIN: PIN, UKEY_NEW_PIN: PIN, UKEY_NO_AGENT: '1' });
  await page.locator('#events').getByText('carrier.inserted').waitFor({ timeout: DEADLINE_MS });
  await page.locator('#tokens').getByText('Bob').waitFor({ timeout: DEADLINE_MS });
  await page.close();
});
