// What every Node comparison client of mqtt-line-bench shares: the job file, the line's routing
// rule (exact address first, then regular expressions in descending order of the address,
// whole match), the connection, "ready" once subscribed, and the one JSON report at the end.
'use strict';
const fs = require('fs');
const mqtt = require('mqtt');

const wallNs = () => (performance.timeOrigin + performance.now()) * 1e6;

// Starts the job of the file named on the command line; `onMessage(topic, payload, packet, route)`
// handles each message and calls `stats.seen(sentNs)` for each one that counts.
function runJob(onMessage) {
  const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const exact = new Map();
  const regexes = [];
  job.stations.forEach((st, i) => {
    exact.set(st.address, i);
    if (st.regex) regexes.push([st.address, new RegExp('^(?:' + st.address + ')$'), i]);
  });
  regexes.sort((a, b) => (a[0] < b[0] ? 1 : a[0] > b[0] ? -1 : 0));
  const route = (name) => {
    const st = exact.get(name);
    if (st !== undefined) return st;
    for (const [, rx, i] of regexes) if (rx.test(name)) return i;
    return undefined;
  };

  const lat = [];
  const stats = { count: 0, lastNs: 0, extra: {} };
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
      ...stats.extra,
      count: stats.count, connect_ns: Math.round(connectNs),
      last_ns: Math.round(stats.lastNs || wallNs()),
      lat_ns: lat.length ? [pick(0.5), pick(0.99), lat[lat.length - 1]] : null,
    }) + '\n', () => client.end(true, () => process.exit(0)));
  }
  stats.seen = (sentNs) => {
    const now = wallNs();
    if (sentNs !== undefined) lat.push(now - sentNs);
    stats.count += 1;
    stats.lastNs = now;
    if (stats.count === job.count) finish();
  };

  client.on('connect', () => {
    client.subscribe(job.filter, { qos: job.qos }, (err) => {
      if (err) { console.error(err); process.exit(1); }
      process.stdout.write('ready\n');
      if (job.session_only) return finish();
      setTimeout(finish, job.limit_s * 1000);
    });
  });
  client.on('message', (topic, payload, packet) => onMessage(topic, payload, packet, route));
  client.on('error', (e) => { console.error(String(e)); process.exit(1); });
  return { job, stats };
}

module.exports = { runJob };
