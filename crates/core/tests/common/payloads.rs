//! Payloads the core's benches and its cost test both feed a line: one copy of each, so the
//! criterion numbers and the cost budgets speak of the same messages.

use mqtt_line_core::ValueType;

/// A ChirpStack v4 uplink (~1 KB), as scenario 2 of `mqtt-line-bench` sends it, on one line.
pub const UPLINK: &str = r#"{"deduplicationId":"3ac7e3c4-4401-4b8d-9386-a5c902f9202d","time":"2026-11-24T00:00:00.123456789Z","deviceInfo":{"tenantId":"52f14cd4-c6f1-4fbd-8f87-4025e1d49242","tenantName":"ChirpStack","applicationId":"17c82e96-be03-4f38-aef3-f83d48582d97","applicationName":"Test application","deviceProfileId":"14855bf7-d10d-4aee-b618-ebfcb64dc7ad","deviceProfileName":"Test device-profile","deviceName":"Test device","devEui":"0101010101010101","tags":{"key":"value"}},"devAddr":"00189440","dr":1,"fPort":1,"data":"qg==","rxInfo":[{"gatewayId":"0016c001f153a14c","uplinkId":4217106255,"rssi":-36,"snr":10.5,"context":"E3OWOQ==","metadata":{"region_name":"eu868","region_common_name":"EU868"}}],"txInfo":{"frequency":867100000,"modulation":{"lora":{"bandwidth":125000,"spreadingFactor":11,"codeRate":"CR_4_5"}}}}"#;

/// The 8 JA= addresses (without `JA=`) scenario 2 reads from [`UPLINK`], with their tag types.
pub const UPLINK_TAGS: [(&str, ValueType); 8] = [
    ("deduplicationId", ValueType::TxtI),
    ("deviceInfo.devEui", ValueType::TxtI),
    ("devAddr", ValueType::TxtI),
    ("dr", ValueType::Ci),
    ("fPort", ValueType::Ci),
    ("rxInfo[1].rssi", ValueType::Ai),
    ("rxInfo[1].snr", ValueType::Ai),
    ("txInfo.modulation.lora.spreadingFactor", ValueType::Ci),
];

/// The line parameters of a Kepware IoT Gateway station: the message's `timestamp` in Unix ms,
/// each item's own time `t` and quality `q`.
pub const KEPWARE_PARAMS: [(&str, &str); 6] = [
    ("payload_type", "JSON"),
    ("time_field_name", "timestamp"),
    ("time_mask", "UNIXMS"),
    ("item_time_field", "t"),
    ("quality_field", "q"),
    ("valid_quality", "true"),
];

/// The `id` of item `k` of a Kepware IoT Gateway message.
pub fn kepware_item(k: usize) -> String {
    format!("Channel1.Device1.Tag{k:03}")
}

/// A Kepware IoT Gateway message of `items` items in reverse order (~7 KB for 100), each with
/// its value `v`, quality `q` and time `t` (Unix ms), as scenario 2's second row sends it.
pub fn kepware_message(items: usize) -> String {
    let items: Vec<String> = (1..=items)
        .rev()
        .map(|k| {
            format!(
                r#"{{"id":"{}","v":{k}.5,"q":true,"t":1700000000{k:03}}}"#,
                kepware_item(k)
            )
        })
        .collect();
    format!(
        r#"{{"timestamp":1700000000000,"values":[{}]}}"#,
        items.join(",")
    )
}
