// The live page of sim-host --http. Everything from the line is put into the page as text
// (textContent), never as markup: a topic or payload cannot inject HTML.
"use strict";

const UNROUTED_SHOWN = 20;
const stations = new Map(); // station name -> its row's cells
const tags = new Map(); // station "\u0000" tag -> its row's cells
const connections = new Map(); // a redundant line's connection (A, B) -> its row's cells
let filterText = "";

function $(id) {
  return document.getElementById(id);
}

function text(el, value) {
  const s = value === null || value === undefined ? "" : String(value);
  if (el.textContent !== s) el.textContent = s;
}

// Times arrive as RFC 3339 UTC; the page shows the time of day to the millisecond (UTC) and the
// whole time stamp as the cell's tooltip.
function showTime(el, iso) {
  text(el, iso ? iso.slice(11, 23) : "");
  el.title = iso || "";
}

function cell(row, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function matches(station) {
  return filterText === "" || station.toLowerCase().includes(filterText);
}

// A new table row in `tbody` whose cells are named by `columns` (name -> CSS class), the first
// holding `name`; kept in `map` under `name`.
function newRow(map, name, tbody, columns) {
  const tr = document.createElement("tr");
  const r = { tr };
  for (const [key, cls] of Object.entries(columns)) r[key] = cell(tr, cls);
  text(r.name, name);
  map.set(name, r);
  document.querySelector(tbody).appendChild(tr);
  return r;
}

function stationRow(name) {
  let r = stations.get(name);
  if (r) return r;
  r = newRow(stations, name, "#stations tbody", {
    name: "", state: "state", received: "num", dropped: "num", held: "num", last: "time", reason: "reason",
  });
  r.tr.dataset.station = name;
  r.tr.hidden = !matches(name);
  text($("station-count"), `(${stations.size})`);
  return r;
}

function showStation(s) {
  const r = stationRow(s.station);
  text(r.state, s.state);
  r.state.dataset.state = s.state;
  text(r.reason, s.reason);
}

function showStationStats(s) {
  const r = stationRow(s.station);
  text(r.received, s.received);
  text(r.dropped, s.dropped);
  text(r.held, s.held);
  showTime(r.last, s.last_message);
}

function shownValue(t) {
  if (!t.valid) return t.time ? "invalid" : "no value yet";
  return typeof t.value === "string" ? t.value : JSON.stringify(t.value);
}

function showTag(t) {
  const key = t.station + "\u0000" + t.tag;
  let r = tags.get(key);
  if (!r) {
    const tr = document.createElement("tr");
    tr.dataset.station = t.station;
    tr.dataset.tag = t.tag;
    r = { tr, station: cell(tr), tag: cell(tr), type: cell(tr), value: cell(tr, "value"), time: cell(tr, "time") };
    text(r.station, t.station);
    text(r.tag, t.tag);
    text(r.type, t.type);
    tr.hidden = !matches(t.station);
    tags.set(key, r);
    document.querySelector("#tags tbody").appendChild(tr);
    text($("tag-count"), `(${tags.size})`);
  }
  text(r.value, shownValue(t));
  r.tr.dataset.valid = String(t.valid);
  showTime(r.time, t.time);
}

function showLine(l) {
  text($("line-name"), "line " + l.name);
  text($("line-state"), l.state);
  $("line-state").dataset.state = l.state;
  text($("line-detail"), l.host ? "broker " + l.host : l.reason || "");
  text($("line-since"), l.since ? "since " + l.since.slice(0, 19).replace("T", " ") + " UTC" : "");
  (l.connections || []).forEach(showConnection);
}

// A redundant line's connections (issue 21): the section shows only once one is reported.
function connectionRow(name) {
  let r = connections.get(name);
  if (r) return r;
  r = newRow(connections, name, "#connections tbody", {
    name: "", state: "state", detail: "reason", received: "num", duplicates: "num", reconnects: "num", since: "time",
  });
  $("connections-section").hidden = false;
  return r;
}

function showConnection(c) {
  const r = connectionRow(c.connection);
  text(r.state, c.state);
  r.state.dataset.state = c.state === "connected" ? "ok" : c.state === "disconnected" ? "comm_error" : "";
  text(r.detail, c.host || c.reason || "");
  showTime(r.since, c.since);
}

function showConnectionStats(c) {
  const r = connectionRow(c.connection);
  text(r.received, c.received);
  text(r.duplicates, c.duplicates);
  text(r.reconnects, c.reconnects);
}

function showCounters(c) {
  const dl = $("counters");
  for (const [name, value] of Object.entries(c)) {
    let dd = dl.querySelector(`dd[data-counter="${name}"]`);
    if (!dd) {
      const dt = document.createElement("dt");
      text(dt, name.replace(/_/g, " "));
      dd = document.createElement("dd");
      dd.dataset.counter = name;
      const pair = document.createElement("div");
      pair.append(dt, dd);
      dl.append(pair);
    }
    if (name === "last_message") showTime(dd, value);
    else text(dd, value === null ? "-" : value);
  }
}

function showUnrouted(list) {
  const ul = $("unrouted");
  for (const u of list) {
    const li = document.createElement("li");
    const time = document.createElement("span");
    time.className = "time";
    text(time, u.time.slice(11, 23) + " ");
    time.title = u.time;
    const topic = document.createElement("span");
    topic.className = "topic";
    text(topic, u.topic);
    li.append(time, topic);
    ul.prepend(li);
  }
  while (ul.children.length > UNROUTED_SHOWN) ul.lastElementChild.remove();
}

function reset() {
  stations.clear();
  tags.clear();
  connections.clear();
  $("connections-section").hidden = true;
  for (const sel of ["#stations tbody", "#tags tbody", "#unrouted", "#counters", "#connections tbody"]) {
    document.querySelector(sel).replaceChildren();
  }
}

function applySnapshot(s) {
  reset();
  showLine(s.status.line);
  s.status.stations.forEach(showStation);
  if (s.stats) {
    showCounters(s.stats.line);
    s.stats.stations.forEach(showStationStats);
    (s.stats.connections || []).forEach(showConnectionStats);
  }
  s.values.tags.forEach(showTag);
  showUnrouted(s.unrouted);
}

function applyDelta(d) {
  if (d.line) showLine(d.line);
  if (d.counters) showCounters(d.counters);
  (d.connection_stats || []).forEach(showConnectionStats);
  d.stations.forEach(showStation);
  d.station_stats.forEach(showStationStats);
  d.tags.forEach(showTag);
  showUnrouted(d.unrouted);
}

function streamState(state, message) {
  const p = $("stream");
  p.dataset.stream = state;
  text(p, message);
}

function connect() {
  const events = new EventSource("/events");
  events.addEventListener("snapshot", (e) => {
    applySnapshot(JSON.parse(e.data));
    streamState("live", "live");
  });
  events.addEventListener("delta", (e) => applyDelta(JSON.parse(e.data)));
  // EventSource reconnects by itself and the server starts again with a snapshot.
  events.onerror = () => streamState("reconnecting", "connection to sim-host lost; reconnecting\u2026");
}

$("filter").addEventListener("input", (e) => {
  filterText = e.target.value.trim().toLowerCase();
  for (const [name, r] of stations) r.tr.hidden = !matches(name);
  for (const r of tags.values()) r.tr.hidden = !matches(r.tr.dataset.station);
});

connect();
