// The Sparkplug B job of an mqtt-line line done with Eclipse Tahu's sparkplug-payload (Node).
//
// Started by `mqtt-line-bench` with a job file (JSON), like mqttjs_sub.js: subscribes to the
// filter, decodes every payload with Tahu's decoder, keeps each node's birth (metric names by
// alias) and its seq, routes the node's identity (group/node) to a station by the line's rule,
// sets every metric's value by name, and measures latency from the payload's time stamp (ms).
// Prints "ready" once subscribed and one JSON report at the end (bench_job.js).
// Install: npm ci (in this folder).
'use strict';
const spb = require('sparkplug-payload').get('spBv1.0');
const { runJob } = require('./bench_job');

const nodes = new Map(); // identity -> { names: Map(alias -> name), seq }
const tags = new Map();
const { stats } = runJob((topic, payload, packet, route) => {
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
    if (seq !== (node.seq + 1) % 256) stats.extra.gaps = (stats.extra.gaps || 0) + 1;
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
  if (kind === 'NDATA') stats.seen(Number(p.timestamp) * 1e6);
});
