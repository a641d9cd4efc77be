// The job of an mqtt-line line done the Node-RED way (mqtt.js).
//
// Started by `mqtt-line-bench` with a job file (JSON): routes every message to a station by the
// same rule as the line (exact topic first, then regular expressions in descending order of the
// address, whole-topic match), decodes the payload, extracts the JSON paths, reads the time
// stamp, and measures latency from the send time in the payload. Prints "ready" once subscribed
// and one JSON report at the end. Install: npm ci (in this folder).
'use strict';
const fs = require('fs');
const mqtt = require('mqtt');

const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const exact = new Map();
const regexes = [];
job.stations.forEach((st, i) => {
  exact.set(st.address, i);
  if (st.regex) regexes.push([st.address, new RegExp('^(?:' + st.address + ')$'), i]);
});
regexes.sort((a, b) => (a[0] < b[0] ? 1 : a[0] > b[0] ? -1 : 0));

const wallNs = () => (performance.timeOrigin + performance.now()) * 1e6;
function isoNs(text) {
  const ms = Date.parse(text.slice(0, 19) + 'Z');
  const frac = text[19] === '.' ? (text.slice(20, -1) + '000000000').slice(0, 9) : '0';
  return ms * 1e6 + Number(frac);
}
function extract(doc, path) {
  for (const step of path) {
    if (step !== null && typeof step === 'object') {
      // {"key": k, "value": v}: the last element of the array whose member k is v.
      if (!Array.isArray(doc)) return undefined;
      let found;
      for (const item of doc) {
        if (item !== null && typeof item === 'object' && item[step.key] === step.value) found = item;
      }
      if (found === undefined) return undefined;
      doc = found;
      continue;
    }
    if (doc === null || typeof doc !== 'object' || !(step in doc)) return undefined;
    doc = doc[step];
  }
  return doc;
}
function route(topic) {
  const st = exact.get(topic);
  if (st !== undefined) return st;
  for (const [, rx, i] of regexes) if (rx.test(topic)) return i;
  return undefined;
}

const tags = new Map();
const lat = [];
let count = 0;
let lastNs = 0;
const connectNs = wallNs();
const client = mqtt.connect({
  host: job.host, port: job.port, clientId: job.client_id, clean: job.clean,
  keepalive: 60, reconnectPeriod: 0, protocolVersion: 4,
});

let finished = false;
function finish() {
  if (finished) return;
  finished = true;
  lat.sort((a, b) => a - b);
  const pick = (q) => lat[Math.min(lat.length - 1, Math.round((lat.length - 1) * q))];
  process.stdout.write(JSON.stringify({
    count, connect_ns: Math.round(connectNs), last_ns: Math.round(lastNs || wallNs()),
    lat_ns: lat.length ? [pick(0.5), pick(0.99), lat[lat.length - 1]] : null,
  }) + '\n', () => client.end(true, () => process.exit(0)));
}

client.on('connect', () => {
  client.subscribe(job.filter, { qos: job.qos }, (err) => {
    if (err) { console.error(err); process.exit(1); }
    process.stdout.write('ready\n');
    if (job.session_only) return finish();
    setTimeout(finish, job.limit_s * 1000);
  });
});
client.on('message', (topic, payload, packet) => {
  const st = route(topic);
  if (st === undefined) return;
  const text = payload.toString('utf8');
  const values = [topic, text, packet.messageId || 0];
  let sent;
  if (job.paths.length || job.time_path) {
    const doc = JSON.parse(text);
    for (const p of job.paths) values.push(extract(doc, p));
    if (job.time_path) {
      const stamp = extract(doc, job.time_path);
      if (typeof stamp === 'string') sent = isoNs(stamp);
      else if (job.latency === 'ms' && typeof stamp === 'number') sent = stamp * 1e6;
    }
  } else if (job.latency === 'text_ns') {
    sent = Number(text);
  }
  tags.set(st, values);
  const now = wallNs();
  if (sent !== undefined) lat.push(now - sent);
  count += 1;
  lastNs = now;
  if (count === job.count) finish();
});
client.on('error', (e) => { console.error(String(e)); process.exit(1); });
