//! Compressed Sparkplug B payloads, as Eclipse Tahu and D2000 write them: an envelope payload
//! with `uuid = "SPBV1.0_COMPRESSED"` whose `body` is the real payload, encoded and compressed,
//! and an optional String metric `algorithm`, `GZIP` or `DEFLATE` (DEFLATE when absent, as Tahu
//! reads it). DEFLATE is the zlib stream that Java's `Deflater` and pako's `deflate` write; a
//! raw DEFLATE stream is read too. The content is inflated up to a bound (the line's
//! `max_decompressed_size`), so that a small bomb cannot take the host's memory.

use std::io::Read;

use flate2::read::{DeflateDecoder, ZlibDecoder};

use super::payload::{decode_plain, MetricValue, Payload, PayloadError, COMPRESSED, MAX_PAYLOAD};
use crate::gzip::{self, Encoding, GzipError};

/// The metric of the envelope that names the algorithm.
const ALGORITHM: &str = "algorithm";

/// How a body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algorithm {
    Gzip,
    Deflate,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Gzip => "GZIP",
            Algorithm::Deflate => "DEFLATE",
        }
    }
}

/// The algorithm an envelope names: its `algorithm` metric, in any case; DEFLATE without one.
pub(crate) fn algorithm(envelope: &Payload) -> Result<Algorithm, PayloadError> {
    let Some(m) = envelope
        .metrics
        .iter()
        .find(|m| m.name.as_deref() == Some(ALGORITHM))
    else {
        return Ok(Algorithm::Deflate);
    };
    match &m.value {
        Some(MetricValue::String(s)) if s.eq_ignore_ascii_case("GZIP") => Ok(Algorithm::Gzip),
        Some(MetricValue::String(s)) if s.eq_ignore_ascii_case("DEFLATE") => Ok(Algorithm::Deflate),
        other => Err(PayloadError::UnknownAlgorithm {
            algorithm: match other {
                Some(MetricValue::String(s)) => crate::text::shorten(s),
                _ => "(not a String)".into(),
            },
        }),
    }
}

/// Decodes a payload received from the broker; a compressed one is inflated to at most
/// `max_decompressed` bytes (the line's `max_decompressed_size`; 0: refused) and its content
/// decoded.
pub fn decode_with(bytes: &[u8], max_decompressed: usize) -> Result<Payload, PayloadError> {
    // The common form (which has no uuid, so is never compressed) by hand; prost reads
    // anything else and decides every error.
    if let Some(payload) = super::common_payload::decode(bytes) {
        return Ok(payload);
    }
    let payload = decode_plain(bytes)?;
    if payload.uuid.as_deref() != Some(COMPRESSED) {
        return Ok(payload);
    }
    if max_decompressed == 0 {
        return Err(PayloadError::Compressed);
    }
    let content = decompress(&payload, max_decompressed.min(MAX_PAYLOAD))?;
    let inner = decode_plain(&content)?;
    if inner.uuid.as_deref() == Some(COMPRESSED) {
        return Err(PayloadError::CompressedTwice);
    }
    Ok(inner)
}

/// The encoded payload inside a compressed envelope, at most `limit` bytes.
pub(crate) fn decompress(envelope: &Payload, limit: usize) -> Result<Vec<u8>, PayloadError> {
    let algorithm = algorithm(envelope)?;
    let body = envelope.body.as_deref().unwrap_or_default();
    let failed = |reason: String| PayloadError::Inflate {
        algorithm: algorithm.name(),
        reason,
    };
    match algorithm {
        Algorithm::Gzip => match gzip::inflate(body, Encoding::Gzip, limit) {
            Ok(content) => Ok(content.into_owned()),
            Err(GzipError::TooLarge { limit }) => Err(PayloadError::InflatedTooLarge { limit }),
            Err(e) => Err(failed(e.to_string())),
        },
        // zlib starts with a CMF byte of method 8 and a header whose 16 bits divide by 31.
        Algorithm::Deflate if is_zlib(body) => bounded(ZlibDecoder::new(body), limit, failed),
        Algorithm::Deflate => bounded(DeflateDecoder::new(body), limit, failed),
    }
}

fn is_zlib(body: &[u8]) -> bool {
    match body {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

/// Reads `decoder` to its end, refusing more than `limit` bytes; never allocates more than
/// `limit + 1`.
fn bounded(
    decoder: impl Read,
    limit: usize,
    failed: impl Fn(String) -> PayloadError,
) -> Result<Vec<u8>, PayloadError> {
    let mut out = Vec::new();
    let read = decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| failed(e.to_string()))?;
    if read > limit {
        return Err(PayloadError::InflatedTooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::payload::{encode, Metric, COMPRESSED};
    use super::decode_with;
    use super::*;
    use std::io::Write;

    fn inner() -> Payload {
        Payload {
            timestamp: Some(5),
            seq: Some(0),
            metrics: vec![Metric {
                name: Some("Temp".into()),
                datatype: Some(10),
                value: Some(MetricValue::Double(20.5)),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn compress(how: &str, data: &[u8]) -> Vec<u8> {
        let level = flate2::Compression::default();
        match how {
            "gzip" => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            "zlib" => {
                let mut e = flate2::write::ZlibEncoder::new(Vec::new(), level);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            _ => {
                let mut e = flate2::write::DeflateEncoder::new(Vec::new(), level);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
        }
    }

    fn envelope(algorithm: Option<&str>, body: Vec<u8>) -> Vec<u8> {
        encode(&Payload {
            uuid: Some(COMPRESSED.into()),
            body: Some(body),
            metrics: algorithm
                .map(|a| Metric {
                    name: Some(ALGORITHM.into()),
                    datatype: Some(12),
                    value: Some(MetricValue::String(a.into())),
                    ..Default::default()
                })
                .into_iter()
                .collect(),
            ..Default::default()
        })
    }

    /// Each row: the algorithm metric, how the body is compressed, and the error (none: the
    /// inner payload is read).
    #[test]
    fn envelopes_by_algorithm() {
        let bytes = encode(&inner());
        let rows: [(Option<&str>, &str, Option<&str>); 7] = [
            (Some("GZIP"), "gzip", None),
            (Some("gzip"), "gzip", None),
            (Some("DEFLATE"), "zlib", None),
            (Some("DEFLATE"), "raw", None),
            (None, "zlib", None),
            (Some("BZIP2"), "zlib", Some("algorithm 'BZIP2'")),
            (Some("GZIP"), "zlib", Some("GZIP")),
        ];
        for (algorithm, how, error) in rows {
            let got = decode_with(&envelope(algorithm, compress(how, &bytes)), 1 << 20);
            match error {
                None => assert_eq!(got, Ok(inner()), "{algorithm:?} {how}"),
                Some(text) => {
                    let e = got.unwrap_err().to_string();
                    assert!(e.contains(text), "{algorithm:?} {how}: {e}");
                }
            }
        }
    }

    #[test]
    fn the_content_is_bounded() {
        let big = encode(&Payload {
            body: Some(vec![0; 10_000]),
            ..Default::default()
        });
        for (algorithm, how) in [("GZIP", "gzip"), ("DEFLATE", "zlib"), ("DEFLATE", "raw")] {
            let e = decode_with(&envelope(Some(algorithm), compress(how, &big)), 1000)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("max_decompressed_size"),
                "{algorithm} {how}: {e}"
            );
            assert!(decode_with(&envelope(Some(algorithm), compress(how, &big)), 20_000).is_ok());
        }
        let e = decode_with(&envelope(Some("GZIP"), compress("gzip", &big)), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_decompressed_size is 0"), "{e}");
    }
}
