//! `TimeMask::parse` on any text, and `read` of any JSON value (or text) with the masks that
//! parse, in every kind of time zone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt_line_core::parts::{TimeMask, TimeZone};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // mask \n value [\n zone]
    let mut parts = text.splitn(3, '\n');
    let mask = parts.next().unwrap_or("");
    let value = parts.next().unwrap_or("");
    let zone = parts.next().unwrap_or("UTC");
    let _ = TimeZone::parse(zone);
    let Ok(mask) = TimeMask::parse(mask) else {
        return;
    };
    let value = serde_json::from_str::<Value>(value).unwrap_or(Value::String(value.to_string()));
    for zone in [
        TimeZone::Utc,
        TimeZone::Local,
        TimeZone::parse(zone).unwrap_or(TimeZone::Utc),
    ] {
        let _ = mask.read(&value, zone);
    }
});
