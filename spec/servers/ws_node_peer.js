// WebSocket echo peer on Node's `ws` (Debian's node-ws), for interop specs.
// Listens on 127.0.0.1 port 0 and prints `PORT <n>` first; then one line per
// event: CONNECT <path>, MSG <text|binary> <len> <sha1>, CLOSE <code> <reason>.
// /send/<n> also sends a text and a binary message of n bytes after the handshake.
// End of stdin, or 120 s, ends the server. --pmd JSON turns permessage-deflate on with
// those ws options ('{}': ws's defaults; e.g. {"serverNoContextTakeover":true,
// "serverMaxWindowBits":10,"threshold":0}); CONNECT is then followed by
// `EXT <the Sec-WebSocket-Extensions answer, or ->`.
'use strict';
const { WebSocketServer } = require('ws');
const crypto = require('crypto');

const out = (...w) => process.stdout.write(w.join(' ') + '\n');
const pmdArg = process.argv.indexOf('--pmd');
const pmd = pmdArg > 0 ? JSON.parse(process.argv[pmdArg + 1]) : false;
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 * 1024 * 1024, perMessageDeflate: pmd });
let lastExt = '-';
wss.on('headers', (headers) => {
  const h = headers.find((l) => /^sec-websocket-extensions:/i.test(l));
  lastExt = h ? h.replace(/^[^:]*:\s*/, '') : '-';
});

wss.on('listening', () => out('PORT', wss.address().port));
wss.on('connection', (ws, req) => {
  out('CONNECT', req.url);
  if (pmd !== false) out('EXT', lastExt);
  const m = /^\/send\/(\d+)$/.exec(req.url);
  if (m) {
    const n = Number(m[1]);
    ws.send('x'.repeat(n));
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (i * 7 + 2) % 251;
    ws.send(b);
  }
  ws.on('message', (data, isBinary) => {
    out('MSG', isBinary ? 'binary' : 'text', data.length, crypto.createHash('sha1').update(data).digest('hex'));
    ws.send(data, { binary: isBinary });
  });
  ws.on('close', (code, reason) => out('CLOSE', code, reason.toString() || '-'));
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
setTimeout(() => process.exit(0), 120000).unref();
