//! A message payload to values: `payload::parse_json` on any bytes, then
//! `json_value::from_json` of the document and of each of its members into every value type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt_line_core::parts::from_json;
use mqtt_line_core::parts::parse_json;
use mqtt_line_core::ValueType;
use serde_json::Value;

fn convert_all(v: &Value) {
    for ty in ValueType::ALL {
        if let Ok(value) = from_json(v, ty) {
            let _ = value.to_text();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = parse_json(data) else {
        return;
    };
    convert_all(&doc);
    match &doc {
        Value::Array(items) => items.iter().take(64).for_each(convert_all),
        Value::Object(map) => map.values().take(64).for_each(convert_all),
        _ => {}
    }
});
