//! Any bytes as a Sparkplug B payload: decoding never panics, what decodes encodes and decodes
//! again to the same message, and what the line reads (the common form by hand, anything else
//! by prost: `sparkplug_decode_with`) is what prost reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt_line_core::parts::sparkplug_decode_with;
use mqtt_line_core::parts::sparkplug_payload::{decode, encode};

fuzz_target!(|data: &[u8]| {
    let by_prost = decode(data);
    // With no room to inflate, a compressed payload is refused by both.
    let by_line = sparkplug_decode_with(data, 0);
    match (&by_prost, &by_line) {
        // NaN floats compare unequal to themselves, so compare the encodings.
        (Ok(p), Ok(l)) => assert_eq!(encode(p), encode(l), "read differently"),
        (Err(_), Err(_)) => {}
        (p, l) => panic!(
            "prost read it: {}, the line read it: {}",
            p.is_ok(),
            l.is_ok()
        ),
    }
    let Ok(payload) = by_prost else {
        return;
    };
    let again = decode(&encode(&payload)).expect("an encoded payload decodes");
    assert_eq!(encode(&again), encode(&payload));
});
