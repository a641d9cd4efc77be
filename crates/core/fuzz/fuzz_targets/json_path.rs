//! `JsonPath::parse` on any text; a parsed address prints as text that parses to the same
//! address, and looking it up in a document never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt_line_core::parts::JsonPath;

fuzz_target!(|data: &[u8]| {
    // The address, then (after the first newline) a JSON document to look it up in.
    let (text, doc) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let Ok(path) = JsonPath::parse(text) else {
        return;
    };
    let printed = path.to_string();
    let again = JsonPath::parse(&printed)
        .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which does not parse: {e:?}"));
    assert_eq!(again.steps(), path.steps(), "{text:?} -> {printed:?}");
    if let Some(Ok(doc)) = doc.map(serde_json::from_slice::<serde_json::Value>) {
        let _ = path.find(&doc);
    }
});
