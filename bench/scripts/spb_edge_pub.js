// The Sparkplug B edge node side of scenario 9 of mqtt-line-bench, done with Eclipse Tahu's
// sparkplug-client (Node): the same work our edge line does in that scenario.
//
//   node spb_edge_pub.js PORT GROUP NODE COUNT METRICS MODE
//
// Connects to mqtt://127.0.0.1:PORT as edge node GROUP/NODE, publishes its NBIRTH with METRICS
// Double metrics (aliases 1..METRICS), then COUNT NDATA by alias: MODE `single` puts one metric
// in each NDATA (the metrics in turn, like one tag write each), MODE `batch` puts all METRICS
// in each NDATA. The time runs from the first NDATA until the connection is closed (mqtt.js
// flushes what it queued before its `end` callback). Prints one JSON report:
//   {"count":N,"start_ns":..,"end_ns":..,"cpu_s":..}
// Install: npm ci (in this folder).
'use strict';
const sparkplug = require('sparkplug-client');

const wallNs = () => (performance.timeOrigin + performance.now()) * 1e6;
const [port, groupId, edgeNode, countArg, metricsArg, mode] = process.argv.slice(2);
const count = Number(countArg);
const metrics = Number(metricsArg);
if (!mode || !(count > 0) || !(metrics > 0) || !['single', 'batch'].includes(mode)) {
  console.error('usage: node spb_edge_pub.js PORT GROUP NODE COUNT METRICS single|batch');
  process.exit(2);
}

const client = sparkplug.newClient({
  serverUrl: `mqtt://127.0.0.1:${port}`,
  username: '',
  password: '',
  groupId,
  edgeNode,
  clientId: `tahu-bench-${edgeNode}-${process.pid}`,
  publishDeath: true,
  version: 'spBv1.0',
});

function metric(alias, value) {
  return { alias, type: 'Double', value };
}

client.on('birth', () => {
  const birth = [];
  for (let a = 1; a <= metrics; a++) birth.push({ name: `m${a}`, ...metric(a, 0) });
  client.publishNodeBirth({ timestamp: Date.now(), metrics: birth });
  const cpu0 = process.cpuUsage();
  const startNs = wallNs();
  let sent = 0;
  // In slices, so that mqtt.js gets to write to the socket between them.
  const slice = () => {
    const end = Math.min(count, sent + 1000);
    for (; sent < end; sent++) {
      const now = Date.now();
      let ms;
      if (mode === 'single') {
        ms = [metric((sent % metrics) + 1, sent)];
      } else {
        ms = [];
        for (let a = 1; a <= metrics; a++) ms.push(metric(a, sent));
      }
      client.publishNodeData({ timestamp: now, metrics: ms.map((m) => ({ ...m, timestamp: now })) });
    }
    if (sent < count) {
      setImmediate(slice);
      return;
    }
    client.client.end(false, {}, () => {
      const endNs = wallNs();
      const cpu = process.cpuUsage(cpu0);
      process.stdout.write(
        JSON.stringify({ count, start_ns: startNs, end_ns: endNs, cpu_s: (cpu.user + cpu.system) / 1e6 }) + '\n',
      );
      process.exit(0);
    });
  };
  slice();
});
