// The Sparkplug B job of an mqtt-line line done with Eclipse Tahu's sparkplug-payload (Node).
//
// Started by `mqtt-line-bench` with a job file (JSON), like mqttjs_sub.js: subscribes to the
// filter, decodes every payload with Tahu's decoder, keeps each node's birth (metric names by
// alias) and its seq, routes the node's identity (group/node) to a station by the line's rule,
// sets every metric's value by name, and measures latency from the payload's time stamp (ms).
// Prints "ready" once subscribed and one JSON report at the end. Install: npm ci (in this folder).
'use strict';
const fs = require('fs');
const mqtt = require('mqtt');
const spb = require('sparkplug-payload').get('spBv1.0');

const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const exact = new Map();
const regexes = [];
job.stations.forEach((st, i) => {
  exact.set(st.address, i);
  if (st.regex) regexes.push([st.address, new RegExp('^(?:' + st.address + ')$'), i]);
});
regexes.sort((a, b) => (a[0] < b[0] ? 1 : a[0] > b[0] ? -1 : 0));
function route(identity) {
  const st = exact.get(identity);
  if (st !== undefined) return st;
  for (const [, rx, i] of regexes) if (rx.test(identity)) return i;
  return undefined;
}

const wallNs = () => (performance.timeOrigin + performance.now()) * 1e6;
const nodes = new Map(); // identity -> { names: Map(alias -> name), seq }
const tags = new Map();
const lat = [];
let count = 0;
let gaps = 0;
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
    count, gaps, connect_ns: Math.round(connectNs), last_ns: Math.round(lastNs || wallNs()),
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
client.on('message', (topic, payload) => {
  const level = topic.split('/');
  if (level[0] !== 'spBv1.0' || level.length < 4) return;
  const identity = level[1] + '/' + level[3];
  const kind = level[2];
  if (kind !== 'NBIRTH' && kind !== 'NDATA') return;
  const p = spb.decodePayload(payload);
  const seq = Number(p.seq);
  if (kind === 'NBIRTH') {
    const names = new Map();
    for (const m of p.metrics) if (m.alias !== undefined) names.set(Number(m.alias), m.name);
    nodes.set(identity, { names, seq });
  }
  const node = nodes.get(identity);
  if (!node) return;
  if (kind === 'NDATA') {
    if (seq !== (node.seq + 1) % 256) gaps++;
    node.seq = seq;
  }
  const st = route(identity);
  if (st === undefined) return;
  let values = tags.get(st);
  if (!values) tags.set(st, (values = new Map()));
  for (const m of p.metrics) {
    const name = m.name !== undefined ? m.name : node.names.get(Number(m.alias));
    values.set(name, m.value);
  }
  if (kind !== 'NDATA') return;
  const now = wallNs();
  lat.push(now - Number(p.timestamp) * 1e6);
  count++;
  lastNs = now;
  if (count >= job.count) finish();
});
