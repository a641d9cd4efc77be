// The job of an mqtt-line line done the Node-RED way (mqtt.js).
//
// Started by `mqtt-line-bench` with a job file (JSON): routes every message to a station by the
// same rule as the line (exact topic first, then regular expressions in descending order of the
// address, whole-topic match), decodes the payload, extracts the JSON paths, reads the time
// stamp, and measures latency from the send time in the payload. Prints "ready" once subscribed
// and one JSON report at the end (bench_job.js). Install: npm ci (in this folder).
'use strict';
const { runJob } = require('./bench_job');

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

const tags = new Map();
const { job, stats } = runJob((topic, payload, packet, route) => {
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
  stats.seen(sent);
});
