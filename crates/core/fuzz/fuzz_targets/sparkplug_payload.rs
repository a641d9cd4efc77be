//! Any bytes as a Sparkplug B payload: decoding never panics, and what decodes encodes and
//! decodes again to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt_line_core::parts::sparkplug_payload::{decode, encode};

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = decode(data) else {
        return;
    };
    let again = decode(&encode(&payload)).expect("an encoded payload decodes");
    // NaN floats compare unequal to themselves, so compare the encodings.
    assert_eq!(encode(&again), encode(&payload));
});
