// node_ws.js MODE URL N [SIZE] [KIND] [CAFILE]: the bench modes with Node's `ws`, written
// as a user would write them. MODE: recv | send | echo | idle. The ws package comes from
// NODE_PATH (scripts/bench/node_modules, or Debian's /usr/share/nodejs).
// KIND json (and MODE zidle, the memory case of compression): permessage-deflate with ws's
// defaults (perMessageDeflate: true; its 1024-byte threshold holds only without context
// takeover, so with it every message is compressed), the messages being the lines of $BENCH_JSON, message i line i % lines.
'use strict';
const WebSocket = require('ws');
const fs = require('fs');
const [mode, url, nArg, sizeArg, kind, cafile] = process.argv.slice(2);
const n = Number(nArg), size = Number(sizeArg || 0);
const now = () => Number(process.hrtime.bigint()) / 1e9;
const report = (msgs, bytes, secs, extra) =>
  process.stdout.write(`RESULT msgs=${msgs} bytes=${bytes} secs=${secs.toFixed(6)}${extra || ''}\n`);
const pmd = kind === 'json' || mode === 'zidle';
const opts = { perMessageDeflate: pmd, maxPayload: 0 };
const lines = kind === 'json' ? fs.readFileSync(process.env.BENCH_JSON, 'utf8').split('\n').filter((l) => l) : null;
if (cafile) opts.ca = fs.readFileSync(cafile);

function recv() {
  const ws = new WebSocket(url, opts);
  let got = 0, bytes = 0, t0;
  ws.on('open', () => {
    t0 = now();
    process.stdout.write(`INFO ext=${ws.extensions.replace(/ /g, '')}\n`);
    if (ws._socket.getCipher) process.stdout.write(`INFO cipher=${ws._socket.getCipher().name}\n`);
  });
  ws.on('message', (data) => {
    got++;
    bytes += data.length;
    if (got === n) report(got, bytes, now() - t0);
  });
  ws.on('error', (e) => { console.error('error:', e.message); process.exitCode = 1; });
}

// Batches of about 1 MiB (moonwire's default send buffer); the next batch starts when the
// last message of this one has been handed to the kernel (send's callback).
function send() {
  const ws = new WebSocket(url, opts);
  const msg = kind === 'binary' ? Buffer.alloc(size, 'x') : 'x'.repeat(size);
  const batch = Math.max(1, Math.floor((1 << 20) / (size + 6)));
  let sent = 0, t0;
  const next = lines ? () => lines[sent % lines.length] : () => msg;
  const pump = () => {
    const end = Math.min(n, sent + batch);
    while (sent < end - 1) { ws.send(next()); sent++; }
    if (sent < end) { const m = next(); sent++; ws.send(m, sent < n ? pump : undefined); }
  };
  ws.on('open', () => {
    t0 = now();
    process.stdout.write(`INFO ext=${ws.extensions.replace(/ /g, '')}\n`);
    pump();
  });
  ws.on('message', (data) => {
    if (data.toString() === 'done') { report(sent, sent * size, now() - t0); ws.close(); }
  });
  ws.on('error', (e) => { console.error('error:', e.message); process.exitCode = 1; });
}

function echo() {
  const ws = new WebSocket(url, opts);
  const msg = 'e'.repeat(size);
  let done = 0, t0;
  ws.on('open', () => { t0 = now(); ws.send(msg); });
  ws.on('message', () => {
    done++;
    if (done < n) ws.send(msg);
    else { report(done, done * size, now() - t0); ws.close(); }
  });
  ws.on('error', (e) => { console.error('error:', e.message); process.exitCode = 1; });
}

function rssKb() {
  const m = fs.readFileSync('/proc/self/status', 'utf8').match(/VmRSS:\s+(\d+)/);
  return Number(m[1]);
}

function idle() {
  const INFLIGHT = 500, conns = [];
  const before = rssKb(), t0 = now();
  let started = 0, open = 0;
  const startOne = () => {
    if (started >= n) return;
    started++;
    const ws = new WebSocket(url, opts);
    conns.push(ws);
    const counted = () => {
      open++;
      if (open === n) setTimeout(() => {
        report(open, 0, now() - t0, ` rss_before_kb=${before} rss_after_kb=${rssKb()}`);
        for (const c of conns) c.terminate();
      }, 200);
      else startOne();
    };
    if (mode === 'zidle') {
      ws.on('message', (data, isBinary) => {
        const s = data.toString();
        if (s === 'ok') counted();
        else if (s === 'bad') { console.error('error: the server got our message back wrong'); process.exit(1); }
        else ws.send(s);
      });
    } else {
      ws.on('open', counted);
    }
    ws.on('error', (e) => { console.error('error:', e.message); process.exitCode = 1; });
  };
  for (let i = 0; i < Math.min(INFLIGHT, n); i++) startOne();
}

({ recv, send, echo, idle, zidle: idle })[mode]();
