// A Sparkplug B edge node made with Eclipse Tahu's sparkplug-client, for the end-to-end tests.
//
//   node edge.js PORT GROUP NODE DEVICE
//
// It connects to mqtt://127.0.0.1:PORT, publishes its NBIRTH and the DBIRTH of DEVICE, and then
// takes one JSON command per stdin line:
//   {"cmd":"ndata","alias":1,"type":"Double","value":21.5}   NDATA, the metric by alias only
//   {"cmd":"ddata","alias":10,"type":"Float","value":2.5}    DDATA of DEVICE, by alias only
//     (either with "compress":"GZIP" or "DEFLATE": Tahu's compressed envelope with that
//     algorithm metric; "compress":true: the envelope without one)
//   {"cmd":"swap","alias":1,"type":"Double","values":[1.5,2.5]}  two NDATA published out of
//     seq order: first 1.5 with the later seq, then 2.5 with the earlier one
//   {"cmd":"gap"}       skip one seq (the next message shows a gap)
//   {"cmd":"ddeath"}    DDEATH of DEVICE
//   {"cmd":"ndeath"}    NDEATH with the current bdSeq
//   {"cmd":"quit"}      disconnect and exit
// Every event is one JSON line on stdout: {"event":"birth"}, {"event":"ncmd","metrics":[...]},
// {"event":"dcmd","device":"...","metrics":[...]}, {"event":"sent","cmd":"..."}. An NCMD with
// "Node Control/Rebirth" = true is answered with new births, as an edge node must.
"use strict";

const readline = require("readline");
const sparkplug = require("sparkplug-client");

const [port, groupId, edgeNode, deviceId] = process.argv.slice(2);
if (!deviceId) {
    console.error("usage: node edge.js PORT GROUP NODE DEVICE");
    process.exit(2);
}

function say(event) {
    process.stdout.write(JSON.stringify(event) + "\n");
}

const client = sparkplug.newClient({
    serverUrl: `mqtt://127.0.0.1:${port}`,
    username: "",
    password: "",
    groupId,
    edgeNode,
    clientId: `tahu-edge-${edgeNode}-${process.pid}`,
    publishDeath: true,
    version: "spBv1.0",
});

function births() {
    client.publishNodeBirth({
        timestamp: Date.now(),
        metrics: [
            { name: "Node Control/Rebirth", type: "Boolean", value: false },
            { name: "Inputs/Temperature", alias: 1, type: "Double", value: 20.5 },
            { name: "Outputs/Setpoint", alias: 2, type: "Int32", value: 7 },
            { name: "Outputs/Mode", alias: 3, type: "String", value: "auto" },
        ],
    });
    client.publishDeviceBirth(deviceId, {
        timestamp: Date.now(),
        metrics: [
            { name: "Speed", alias: 10, type: "Float", value: 1.5 },
            { name: "Enable", alias: 11, type: "Boolean", value: false },
        ],
    });
    say({ event: "birth" });
}

const plain = (metrics) =>
    metrics.map((m) => ({ name: m.name, type: m.type, value: m.value === null ? null : String(m.value) }));

client.on("birth", births);
client.on("ncmd", (payload) => {
    say({ event: "ncmd", metrics: plain(payload.metrics) });
    if (payload.metrics.some((m) => m.name === "Node Control/Rebirth" && m.value === true)) {
        births();
    }
});
client.on("dcmd", (device, payload) => {
    say({ event: "dcmd", device, metrics: plain(payload.metrics) });
});
client.on("error", (e) => {
    console.error(`edge.js: ${e}`);
    process.exit(1);
});

readline.createInterface({ input: process.stdin }).on("line", (line) => {
    const c = JSON.parse(line);
    const metric = (value = c.value) => ({ alias: c.alias, type: c.type, value, timestamp: Date.now() });
    const options =
        c.compress === undefined
            ? undefined
            : c.compress === true
              ? { compress: true }
              : { compress: true, algorithm: c.compress };
    switch (c.cmd) {
        case "ndata":
            client.publishNodeData({ timestamp: Date.now(), metrics: [metric()] }, options);
            break;
        case "ddata":
            client.publishDeviceData(deviceId, { timestamp: Date.now(), metrics: [metric()] }, options);
            break;
        case "swap": {
            // Tahu numbers both, then they go out in the other order.
            const earlier = { timestamp: Date.now(), metrics: [metric(c.values[1])] };
            const later = { timestamp: Date.now(), metrics: [metric(c.values[0])] };
            client.addSeqNumber(earlier);
            client.addSeqNumber(later);
            const topic = `spBv1.0/${groupId}/NDATA/${edgeNode}`;
            client.client.publish(topic, Buffer.from(client.encodePayload(later)));
            client.client.publish(topic, Buffer.from(client.encodePayload(earlier)));
            break;
        }
        case "gap":
            client.incrementSeqNum();
            break;
        case "ddeath":
            client.publishDeviceDeath(deviceId, { timestamp: Date.now(), metrics: [] });
            break;
        case "ndeath":
            client.publishNDeath(client.client);
            break;
        case "quit":
            client.client.end(false, {}, () => process.exit(0));
            return;
        default:
            console.error(`edge.js: unknown command ${line}`);
            return;
    }
    say({ event: "sent", cmd: c.cmd });
});
