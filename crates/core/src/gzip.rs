//! gzip-compressed payloads: recognised by their first two bytes (1f 8b) or declared by the
//! message (an MQTT 5 Content-Type), and inflated up to a bound, so that a small bomb cannot take
//! the host's memory. The bound is the line parameter `max_decompressed_size`.

use std::borrow::Cow;
use std::io::Read;

use flate2::read::MultiGzDecoder;

/// The first two bytes of every gzip stream (RFC 1952).
pub const MAGIC: [u8; 2] = [0x1f, 0x8b];

/// What the line knows of a payload's encoding before looking at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// Nothing said: a payload that starts with 1f 8b is gzip.
    #[default]
    Detect,
    /// The message says gzip (an MQTT 5 Content-Type): the payload must be a gzip stream.
    Gzip,
}

impl Encoding {
    /// The encoding an MQTT 5 Content-Type announces: `application/gzip`, `application/x-gzip`,
    /// or any type with a `+gzip` suffix or a `gzip` parameter value (`application/json+gzip`,
    /// `application/json; content-encoding=gzip`), in any case. Anything else leaves it to the
    /// payload's first bytes.
    pub fn from_content_type(content_type: &str) -> Encoding {
        let ct = content_type.trim().to_ascii_lowercase();
        let (essence, params) = ct.split_once(';').unwrap_or((&ct, ""));
        let essence = essence.trim();
        let gzip = matches!(essence, "application/gzip" | "application/x-gzip")
            || essence.ends_with("+gzip")
            || params
                .split(';')
                .filter_map(|p| p.split_once('='))
                .any(|(_, v)| v.trim().trim_matches('"') == "gzip");
        if gzip {
            Encoding::Gzip
        } else {
            Encoding::Detect
        }
    }
}

/// Why a gzip payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GzipError {
    #[error(
        "the gzip payload inflates to more than {limit} bytes (max_decompressed_size); it is \
         refused"
    )]
    TooLarge { limit: usize },
    #[error("the gzip stream is cut short after {inflated} bytes of content")]
    Truncated { inflated: usize },
    #[error("the gzip stream is damaged: {reason}")]
    Corrupt { reason: String },
    #[error("the message says gzip but the payload does not start with 1f 8b")]
    NotGzip,
}

/// Whether a payload is a gzip stream by its first bytes.
pub fn is_gzip(payload: &[u8]) -> bool {
    payload.starts_with(&MAGIC)
}

/// The payload to parse: `payload` itself, or its inflated content when it is gzip. `limit` is
/// the most bytes the content may have (0: gzip payloads are left as they are). At most
/// `limit + 1` bytes are ever allocated.
pub fn inflate(
    payload: &[u8],
    encoding: Encoding,
    limit: usize,
) -> Result<Cow<'_, [u8]>, GzipError> {
    if limit == 0 {
        return Ok(Cow::Borrowed(payload));
    }
    if !is_gzip(payload) {
        return match encoding {
            Encoding::Detect => Ok(Cow::Borrowed(payload)),
            Encoding::Gzip => Err(GzipError::NotGzip),
        };
    }
    inflate_gzip(payload, limit).map(Cow::Owned)
}

/// Inflates a gzip payload. Its own function: the 16 KB buffer on its stack would otherwise be
/// reserved (and its pages probed) for every payload, gzip or not.
#[inline(never)]
fn inflate_gzip(payload: &[u8], limit: usize) -> Result<Vec<u8>, GzipError> {
    let cap = limit.saturating_add(1);
    let mut decoder = MultiGzDecoder::new(payload);
    let mut out: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match decoder.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(GzipError::Truncated {
                    inflated: out.len(),
                })
            }
            Err(e) => {
                return Err(GzipError::Corrupt {
                    reason: e.to_string(),
                })
            }
        };
        if out.len() + n > limit {
            return Err(GzipError::TooLarge { limit });
        }
        if out.capacity() - out.len() < n {
            // Doubling, but never past the bound.
            let want = out.len().max(n).min(cap - out.len());
            out.reserve_exact(want);
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// The Content-Type of a compressed write on an MQTT 5 line.
pub const CONTENT_TYPE: &str = "application/gzip";

/// Compressed writes (`compress_writes`): one deflate state kept by the line and reset for each
/// write, because making one allocates and clears some 300 kB (about 50 µs, far more than
/// compressing a value takes). The fastest level: short values gain little from more effort.
pub(crate) struct GzipWriter {
    deflate: flate2::Compress,
}

/// The gzip header of every write: deflate, no flags, no time, OS unknown (RFC 1952).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

impl GzipWriter {
    pub(crate) fn new() -> GzipWriter {
        GzipWriter {
            deflate: flate2::Compress::new(flate2::Compression::fast(), false),
        }
    }

    /// `data` as one gzip stream.
    pub(crate) fn compress(&mut self, data: &[u8]) -> Result<Vec<u8>, String> {
        self.deflate.reset();
        let mut out = Vec::with_capacity(HEADER.len() + data.len() / 2 + 64);
        out.extend_from_slice(&HEADER);
        loop {
            let consumed = usize::try_from(self.deflate.total_in()).unwrap_or(usize::MAX);
            let rest = data.get(consumed..).unwrap_or_default();
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity());
            }
            match self
                .deflate
                .compress_vec(rest, &mut out, flate2::FlushCompress::Finish)
            {
                Ok(flate2::Status::StreamEnd) => break,
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        let mut crc = flate2::Crc::new();
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        // ISIZE: the length modulo 2^32.
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_writes_read_back() {
        let mut w = GzipWriter::new();
        let noise: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for text in [
            &b""[..],
            b"1",
            br#"{"set": 21.5, "unit": "C"}"#,
            &[b'x'; 5000],
            &noise,
            b"1",
        ] {
            let packed = w.compress(text).unwrap();
            assert!(is_gzip(&packed));
            assert_eq!(&*inflate(&packed, Encoding::Gzip, 1 << 20).unwrap(), text);
        }
        assert_eq!(Encoding::from_content_type(CONTENT_TYPE), Encoding::Gzip);
    }

    #[test]
    fn gzip_is_inflated_and_other_payloads_pass() {
        let text = br#"{"a":1}"#;
        let packed = gzip(text);
        assert_eq!(&*inflate(&packed, Encoding::Detect, 1024).unwrap(), text);
        assert_eq!(&*inflate(&packed, Encoding::Gzip, 7).unwrap(), text);
        assert!(matches!(inflate(text, Encoding::Detect, 1024), Ok(Cow::Borrowed(t)) if t == text));
        // 0: gzip is off, the payload is what it is.
        assert_eq!(
            &*inflate(&packed, Encoding::Detect, 0).unwrap(),
            &packed[..]
        );
        assert_eq!(inflate(text, Encoding::Gzip, 1024), Err(GzipError::NotGzip));
        // Two members one after the other are one stream.
        let mut two = gzip(b"ab");
        two.extend(gzip(b"cd"));
        assert_eq!(&*inflate(&two, Encoding::Detect, 10).unwrap(), b"abcd");
    }

    #[test]
    fn broken_streams_and_bombs_are_refused() {
        let big = vec![b'0'; 3 * 1024 * 1024];
        let bomb = gzip(&big);
        assert!(bomb.len() < 20 * 1024, "{}", bomb.len());
        assert_eq!(
            inflate(&bomb, Encoding::Detect, 1024 * 1024),
            Err(GzipError::TooLarge { limit: 1024 * 1024 })
        );
        assert_eq!(
            inflate(&gzip(b"12345678"), Encoding::Detect, 7),
            Err(GzipError::TooLarge { limit: 7 })
        );
        let packed = gzip(b"hello, world, hello, world");
        for cut in [
            2,
            5,
            10,
            packed.len() / 2,
            packed.len() - 4,
            packed.len() - 1,
        ] {
            match inflate(&packed[..cut], Encoding::Detect, 1024) {
                Err(GzipError::Truncated { .. } | GzipError::Corrupt { .. }) => {}
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        let mut damaged = packed.clone();
        let n = damaged.len();
        damaged[n - 6] ^= 0xff; // the CRC
        assert!(matches!(
            inflate(&damaged, Encoding::Detect, 1024),
            Err(GzipError::Corrupt { .. })
        ));
        assert!(inflate(&[0x1f, 0x8b, 0, 0, 0], Encoding::Detect, 1024).is_err());
    }

    #[test]
    fn content_types_that_say_gzip() {
        for (ct, want) in [
            ("application/gzip", Encoding::Gzip),
            ("Application/X-GZIP", Encoding::Gzip),
            ("application/json+gzip", Encoding::Gzip),
            ("application/json; content-encoding=gzip", Encoding::Gzip),
            ("application/json", Encoding::Detect),
            ("text/plain; charset=utf-8", Encoding::Detect),
            ("", Encoding::Detect),
        ] {
            assert_eq!(Encoding::from_content_type(ct), want, "{ct}");
        }
    }
}
