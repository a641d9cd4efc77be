//! The payload formats of issue 12 on any bytes: gzip inflating within a bound, CSV records, and
//! the one-pass JSON extraction with `[key="value"]` selections, which must find exactly what
//! `JsonPath::find` finds in the parsed document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt_line_core::parts::{inflate, split_csv, JsonPath, PathTree};
use mqtt_line_core::Encoding;

/// The bound of the fuzz runs: small, so that bombs are cheap to find and refuse.
const LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        // gzip (1f 8b forced on half the inputs), then the content as a CSV record.
        0 => {
            let mut bytes = rest.to_vec();
            if mode & 0x80 != 0 && bytes.len() >= 2 {
                bytes[0] = 0x1f;
                bytes[1] = 0x8b;
            }
            let encoding = if mode & 0x40 != 0 {
                Encoding::Gzip
            } else {
                Encoding::Detect
            };
            if let Ok(body) = inflate(&bytes, encoding, LIMIT) {
                assert!(body.len() <= LIMIT.max(bytes.len()), "{} bytes", body.len());
                let text = String::from_utf8_lossy(&body);
                let mut fields = Vec::new();
                let _ = split_csv(&text, ',', &mut fields);
            }
        }
        // A CSV record with a fuzz-chosen separator: the fields never hold the separator
        // unless they were quoted, and there is at least one.
        1 => {
            let Some((&sep, record)) = rest.split_first() else {
                return;
            };
            let sep = char::from(sep);
            let text = String::from_utf8_lossy(record);
            let mut fields = Vec::new();
            if split_csv(&text, sep, &mut fields).is_ok() {
                assert!(!fields.is_empty());
                if !text.contains('"') {
                    assert!(fields.iter().all(|f| !f.contains(sep)), "{text:?}");
                }
            }
        }
        // Addresses (lines before the first NUL) and a JSON document (after it).
        _ => {
            let (paths, doc) = match rest.iter().position(|&b| b == 0) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => return,
            };
            let Ok(paths) = std::str::from_utf8(paths) else {
                return;
            };
            let parsed: Vec<JsonPath> = paths
                .lines()
                .take(16)
                .filter_map(|p| JsonPath::parse(p).ok())
                .collect();
            let tree = PathTree::new(&parsed);
            let mut out = Vec::new();
            let extracted = tree.extract(doc, &mut out);
            let full = serde_json::from_slice::<serde_json::Value>(doc);
            if let (Ok(()), Ok(full)) = (&extracted, &full) {
                for (p, got) in parsed.iter().zip(&out) {
                    let got = got.as_ref().map(|f| f.json(doc).into_owned());
                    assert_eq!(got.as_ref(), p.find(full), "{p}");
                }
            }
        }
    }
});
