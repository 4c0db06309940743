// Two holders logged in at once: each runs their own real `ukey agent` (root's, and `nobody`'s
// through setpriv) on the same port range. `nobody`'s agent starts first and takes the first
// port; root's agent finds it held by another account and takes the next one. Then each
// account's client finds its own agent with ukey.js's discovery (UkeyClient.connect without a
// url): root's in real Chromium, `nobody`'s in Node run as `nobody`. Each is refused by the
// other account's agent when pointed at it directly.
//
// Needs root (setpriv to `nobody`), as CI runs it. Run by scripts/suites/50-browser.sh, or:
//   UKEY_BIN=target/debug/ukey node --test tests/browser/ports.test.mjs

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, chmodSync, chownSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const UKEY = process.env.UKEY_BIN ?? join(repo, 'target/debug/ukey');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const DEADLINE_MS = 30_000;
const NOBODY = 65534;
const RANGE = 3;

if (process.getuid() !== 0) {
  throw new Error('ports.test.mjs runs a second account (nobody) through setpriv and needs root; run it as root, as CI does');
}
for (const [what, path, fix] of [['chromium', CHROMIUM, 'apt-get install chromium'], ['ukey', UKEY, 'cargo build --bin ukey'],
  ['setpriv', '/usr/bin/setpriv', 'apt-get install util-linux']]) {
  if (!existsSync(path)) throw new Error(`${what} is missing at ${path}: ${fix}`);
}

const dir = mkdtempSync(join(tmpdir(), 'ukey-ports-'));
chmodSync(dir, 0o755);
const agents = [];
let context;

after(async () => {
  await context?.close();
  for (const a of agents) a.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** `count` consecutive free loopback ports. */
async function freeRange(count) {
  const tryListen = (port) => new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(null));
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
  for (let attempt = 0; attempt < 100; attempt++) {
    const probe = await tryListen(0);
    if (!probe) continue;
    const base = probe.address().port;
    probe.close();
    const held = [];
    for (let p = base; p < base + count && p < 65536; p++) {
      const s = await tryListen(p);
      if (!s) break;
      held.push(s);
    }
    for (const s of held) s.close();
    if (held.length === count) return base;
  }
  throw new Error(`no ${count} consecutive free loopback ports`);
}

/** A private home for an account (its runtime, data, config and state directories). */
function home(name, uid) {
  const h = join(dir, name);
  mkdirSync(h);
  chownSync(h, uid, uid);
  chmodSync(h, 0o700);
  return {
    uid,
    env: {
      PATH: '/usr/bin:/bin', HOME: h, XDG_RUNTIME_DIR: join(h, 'run'), XDG_DATA_HOME: join(h, 'data'),
      XDG_CONFIG_HOME: join(h, 'config'), XDG_STATE_HOME: join(h, 'state'), UKEY_SOFT_DIR: join(h, 'soft'),
      UKEY_SYSTEM_DIR: join(h, 'system'), UKEY_DRIVERS: 'soft',
    },
  };
}

/** The argv that runs `program args` as the account (setpriv for another one). */
function as(account, program, args) {
  if (account.uid === 0) return [program, args];
  return ['/usr/bin/setpriv', [`--reuid=${account.uid}`, `--regid=${account.uid}`, '--clear-groups', '--', program, ...args]];
}

/** Starts the account's agent on the range; resolves with the port it reports. */
function startAgent(account, base) {
  const [program, args] = as(account, UKEY, ['agent', '--dev', '-vv', '--port', String(base), '--port-range', String(RANGE)]);
  const child = spawn(program, args, { env: account.env, stdio: ['ignore', 'pipe', 'pipe'] });
  agents.push(child);
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  const port = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`uid ${account.uid}'s agent did not start:\n${log}`)), DEADLINE_MS);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/http:\/\/127\.0\.0\.1:(\d+)\//);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`uid ${account.uid}'s agent exited (${code}):\n${log}`)); });
  });
  return { port, log: () => log };
}

/** A development page (its own http origin) serving ukey.js. */
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

/** Runs ukey.js's discovery (or a connection to `url`) in Node as the account; its JSON report. */
function nodeClientAs(account, base, url) {
  const major = Number(process.versions.node.split('.')[0]);
  const flags = major < 22 ? ['--experimental-websocket', '--no-warnings'] : ['--no-warnings'];
  const code = `
    const { UkeyClient } = await import(${JSON.stringify(pathToFileURL(join(repo, 'web/ukey.js')).href)});
    // Node sends no Origin of its own; a page would. The agents run with --dev (http loopback pages).
    class PageSocket extends WebSocket { constructor(u) { super(u, { headers: { Origin: 'http://127.0.0.1:1' } }); } }
    try {
      const c = await UkeyClient.connect({ ${url ? `url: ${JSON.stringify(url)}` : `port: ${base}, portRange: ${RANGE}`},
        WebSocket: PageSocket, clientName: 'node as uid ${account.uid}' });
      console.log(JSON.stringify({ url: c.url, agent: c.hello.agent }));
      c.close();
    } catch (e) {
      console.log(JSON.stringify({ error: e.name, message: e.message, tried: e.data?.tried ?? [] }));
    }
    process.exit(0);`;
  const [program, args] = as(account, process.execPath, [...flags, '--input-type=module', '-e', code]);
  const out = execFileSync(program, args, { env: { ...account.env, PATH: process.env.PATH }, encoding: 'utf8', timeout: DEADLINE_MS });
  return JSON.parse(out.trim().split('\n').pop());
}

test("each account's client finds its own agent on the port range and is refused by the other's", async () => {
  const base = await freeRange(RANGE);
  const root = home('root', 0);
  const nobody = home('nobody', NOBODY);

  const theirs = startAgent(nobody, base);
  const theirPort = await theirs.port;
  assert.equal(theirPort, base, "nobody's agent, first on the machine, takes the first port");
  const ours = startAgent(root, base);
  const ourPort = await ours.port;
  assert.equal(ourPort, base + 1, `root's agent takes the next port:\n${ours.log()}`);
  assert.match(ours.log(), new RegExp(`port ${base} is held by another account's program \\(${base} by nobody \\(uid ${NOBODY}\\)\\)`));

  // nobody's client, in Node as nobody: discovery finds its agent; root's agent refuses it.
  const found = nodeClientAs(nobody, base);
  assert.deepEqual(found, { url: `ws://127.0.0.1:${base}/rpc`, agent: 'ukey' }, JSON.stringify(found));
  const refused = nodeClientAs(nobody, base, `ws://127.0.0.1:${ourPort}/rpc`);
  assert.equal(refused.error, 'AgentUnavailable', JSON.stringify(refused));

  // root's client, in real Chromium: discovery passes over nobody's agent (403) and finds root's.
  const server = await devServer();
  try {
    context = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    const r = await page.evaluate(async ({ base, range, theirPort }) => {
      const { UkeyClient } = await import('/ukey.js');
      const c = await UkeyClient.connect({ port: base, portRange: range, clientName: 'chromium as root' });
      const found = { url: c.url, agent: c.hello.agent, origin: c.origin };
      c.close();
      let direct;
      try {
        await UkeyClient.connect({ url: `ws://127.0.0.1:${theirPort}/rpc` });
        direct = 'connected';
      } catch (e) {
        direct = e.name;
      }
      // Nothing of the page's own account on the range: discovery says so and lists what it tried.
      let none;
      try {
        await UkeyClient.connect({ port: theirPort, portRange: 1 });
        none = 'connected';
      } catch (e) {
        none = { name: e.name, tried: e.data?.tried };
      }
      return { found, direct, none };
    }, { base, range: RANGE, theirPort });
    assert.deepEqual(r.found, { url: `ws://127.0.0.1:${ourPort}/rpc`, agent: 'ukey', origin: `http://127.0.0.1:${server.address().port}` });
    assert.equal(r.direct, 'AgentUnavailable', "root's page is refused by nobody's agent");
    assert.deepEqual(r.none, { name: 'AgentUnavailable', tried: [`ws://127.0.0.1:${theirPort}/rpc`] });
  } finally {
    server.close();
  }
  assert.match(theirs.log(), /refused a connection on port/, "nobody's agent logged the refusal of root's page");
  assert.match(ours.log(), /refused a connection on port/, "root's agent logged the refusal of nobody's client");
});
