// The agent's demo page: pair, list carriers and certificates, sign and verify, authenticate
// and verify the token, and show insert/remove events live. Uses only ukey.js.

import { UkeyClient, verifySignature, verifyAuthToken, newNonce, toBase64, NotPaired, UserCancelled } from '/ukey.js';

const $ = (id) => document.getElementById(id);
const text = (el, value, cls) => { el.textContent = value; el.className = cls ?? ''; };
let client;
let selected = null;

function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = document.createElement('td');
    if (c instanceof Node) td.append(c); else td.textContent = c;
    tr.append(td);
  }
  return tr;
}

function describe(err) {
  if (err instanceof UserCancelled) return 'you refused in the agent’s dialog';
  return `${err.name ?? 'Error'}: ${err.message}`;
}

async function refresh() {
  const tokens = await client.listTokens();
  $('tokens').replaceChildren(...tokens.map((t) => {
    const label = document.createElement('span');
    label.textContent = t.label;
    if (t.software) { label.className = 'soft'; label.title = 'software token, not a hardware carrier'; }
    const pin = t.pin ? (t.pin.user.locked ? 'locked' : `${t.pin.user.retries_left ?? '?'} tries left`) : '';
    return row([label, t.kind, t.serial, pin]);
  }));
  const certs = (await client.listCertificates()).filter((c) => c.has_key);
  $('certs').replaceChildren(...certs.map((c, i) => {
    const radio = document.createElement('input');
    radio.type = 'radio';
    radio.name = 'cert';
    radio.value = c.handle;
    radio.checked = selected ? selected.handle === c.handle : i === 0;
    radio.onchange = () => { selected = c; };
    if (radio.checked) selected = c;
    return row([radio, c.subject, c.issuer, c.key_algorithm ?? '?', new Date(c.not_after * 1000).toISOString().slice(0, 10)]);
  }));
  if (!certs.some((c) => c.handle === selected?.handle)) selected = certs[0] ?? null;
  $('sign').disabled = $('auth').disabled = !selected;
}

async function ready() {
  text($('status'), `connected to ukey agent ${client.hello.version}; this page (${client.origin}) is paired`, 'ok');
  $('pair').hidden = true;
  await refresh();
  await client.subscribe(async (event) => {
    const li = document.createElement('li');
    li.textContent = `${new Date().toLocaleTimeString()} ${event.type} ${typeof event.token === 'string' ? event.token : event.token?.label ?? ''}`;
    $('events').prepend(li);
    await refresh().catch(() => {});
  });
}

$('pair').onclick = async () => {
  try {
    text($('status'), 'waiting for you to confirm in the agent’s dialog…', 'muted');
    await client.pair();
    await ready();
  } catch (e) {
    text($('status'), `not paired: ${describe(e)}`, 'bad');
  }
};

$('sign').onclick = async () => {
  const data = $('text').value;
  const out = $('signature');
  text(out, 'waiting for your PIN in the agent’s dialog…', 'muted');
  try {
    const sig = await client.sign({ cert: selected.handle, data });
    let verdict;
    try {
      verdict = await verifySignature({ certificate: sig.certificate, data, signature: sig.signature, mechanism: sig.mechanism })
        ? 'signature verified ✓' : 'signature does NOT verify ✗';
    } catch (e) {
      verdict = `not verifiable in the browser (${e.message})`;
    }
    out.replaceChildren();
    const p = document.createElement('p');
    p.textContent = `${sig.mechanism}: ${verdict}`;
    p.className = verdict.includes('✓') ? 'ok' : 'bad';
    p.id = 'sign-verdict';
    const code = document.createElement('p');
    code.className = 'mono';
    code.textContent = toBase64(sig.signature);
    out.append(p, code);
  } catch (e) {
    text(out, describe(e), 'bad');
  }
};

$('auth').onclick = async () => {
  const out = $('authresult');
  const nonce = newNonce();
  text(out, 'waiting for your PIN in the agent’s dialog…', 'muted');
  try {
    const token = await client.authenticate({ cert: selected.handle, nonce });
    await verifyAuthToken(token, { origin: location.origin, nonce });
    text(out, `token for ${token.origin} verified ✓ (nonce ${nonce.slice(0, 12)}…)`, 'ok');
  } catch (e) {
    text(out, describe(e), 'bad');
  }
};

(async () => {
  try {
    client = await UkeyClient.connect({ url: `ws://${location.host}/rpc`, clientName: 'ukey demo page' });
    client.onclose = () => text($('status'), 'the agent closed the connection; reload the page', 'bad');
    if (client.paired) {
      await ready();
    } else {
      text($('status'), 'this page is not paired with your agent yet', 'muted');
      $('pair').hidden = false;
    }
  } catch (e) {
    text($('status'), e instanceof NotPaired ? 'not paired' : describe(e), 'bad');
  }
})();
