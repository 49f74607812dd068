// Node's side of the compatibility matrix (tests/compat.rs): one line per feature, `NAME ok`,
// `NAME ERRNO` (the code of the system error that stopped it) or `NAME error TEXT`.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

function report(name, err) {
  if (!err) console.log(name, 'ok');
  else if (err.code && /^E[A-Z]+$/.test(err.code)) console.log(name, err.code);
  else console.log(name, 'error', String(err.message || err).replace(/\n/g, ' ').slice(0, 200));
}

async function feature(name, fn) {
  try { await fn(); report(name); } catch (e) { report(name, e); }
}

(async () => {
  await feature('timers', () => new Promise(r => setTimeout(r, 5)));
  await feature('fs', async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'compat-'));
    await fs.promises.writeFile(path.join(d, 'a'), 'hello');
    if ((await fs.promises.readFile(path.join(d, 'a'), 'utf8')) !== 'hello') throw new Error('read back');
    fs.rmSync(d, { recursive: true });
  });
  await feature('child_process', () => new Promise((res, rej) => {
    require('child_process').execFile('sh', ['-c', 'echo hi'], (e, out) => e ? rej(e) : out === 'hi\n' ? res() : rej(new Error(out)));
  }));
  await feature('worker_threads', () => new Promise((res, rej) => {
    const { Worker } = require('worker_threads');
    const w = new Worker('require("worker_threads").parentPort.postMessage(6 * 7)', { eval: true });
    w.on('message', m => { w.terminate(); m === 42 ? res() : rej(new Error(String(m))); });
    w.on('error', rej);
  }));
  await feature('loopback-tcp', () => new Promise((res, rej) => {
    const net = require('net');
    const srv = net.createServer(c => { c.end('ping'); });
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const c = net.connect(srv.address().port, '127.0.0.1');
      c.on('error', e => { srv.close(); rej(e); });
      c.on('data', d => { c.destroy(); srv.close(); d.toString() === 'ping' ? res() : rej(new Error(d)); });
    });
  }));
})();
