//! Just enough DER to read an X.509 certificate's validity period and public key, of any
//! version (RFC 5280, section 4.1). Nothing here is trusted: the broker verifies the chain.

use std::fmt;

/// The fields of a certificate the line checks before using it.
pub(crate) struct Certificate<'a> {
    /// The whole `SubjectPublicKeyInfo` (tag and length included), as rustls encodes a key's
    /// public half.
    pub spki: &'a [u8],
    pub not_before: CertTime,
    pub not_after: CertTime,
}

/// A `UTCTime` or `GeneralizedTime` of the validity period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertTime {
    /// Seconds since 1970-01-01 UTC.
    pub unix: i64,
    /// `YYYY-MM-DD hh:mm:ss UTC`, for messages.
    pub text: String,
}

impl fmt::Display for CertTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0] EXPLICIT Version`, absent in v1 certificates.
const VERSION: u8 = 0xa0;

/// Reads the certificate's validity and public key; the error says which part is malformed.
pub(crate) fn parse_certificate(der: &[u8]) -> Result<Certificate<'_>, String> {
    let mut outer = Reader(der);
    let cert = outer.expect(SEQUENCE, "Certificate")?;
    let mut cert = Reader(cert.content);
    let mut tbs = Reader(cert.expect(SEQUENCE, "tbsCertificate")?.content);
    if tbs.peek() == Some(VERSION) {
        let version = tbs.expect(VERSION, "version")?;
        let v = Reader(version.content).expect(INTEGER, "version")?;
        if !matches!(v.content, [0..=2]) {
            return Err(format!("unknown version field {:02x?}", v.content));
        }
    }
    tbs.expect(INTEGER, "serialNumber")?;
    tbs.expect(SEQUENCE, "signature algorithm")?;
    tbs.expect(SEQUENCE, "issuer")?;
    let mut validity = Reader(tbs.expect(SEQUENCE, "validity")?.content);
    let not_before = read_time(&mut validity, "notBefore")?;
    let not_after = read_time(&mut validity, "notAfter")?;
    tbs.expect(SEQUENCE, "subject")?;
    let spki = tbs.expect(SEQUENCE, "subjectPublicKeyInfo")?.whole;
    Ok(Certificate {
        spki,
        not_before,
        not_after,
    })
}

struct Tlv<'a> {
    content: &'a [u8],
    /// Tag, length and content.
    whole: &'a [u8],
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// The next element, which must have tag `tag`.
    fn expect(&mut self, tag: u8, what: &str) -> Result<Tlv<'a>, String> {
        match self.peek() {
            Some(got) if got != tag => Err(format!("{what} has tag {got:#04x}, not {tag:#04x}")),
            _ => Ok(self.next().ok_or_else(|| format!("{what} is cut short"))?.1),
        }
    }

    fn next(&mut self) -> Option<(u8, Tlv<'a>)> {
        let data = self.0;
        let tag = *data.first()?;
        let first = *data.get(1)?;
        let (len, header) = if first < 0x80 {
            (usize::from(first), 2)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return None;
            }
            let bytes = data.get(2..2 + n)?;
            let len = bytes.iter().fold(0usize, |l, &b| (l << 8) | usize::from(b));
            (len, 2 + n)
        };
        let end = header.checked_add(len)?;
        let whole = data.get(..end)?;
        self.0 = &data[end..];
        Some((
            tag,
            Tlv {
                content: &whole[header..],
                whole,
            },
        ))
    }
}

fn read_time(r: &mut Reader<'_>, what: &str) -> Result<CertTime, String> {
    let (tag, tlv) = r.next().ok_or_else(|| format!("{what} is cut short"))?;
    let text = std::str::from_utf8(tlv.content).map_err(|_| format!("{what} is not text"))?;
    let full = match tag {
        // RFC 5280: two-digit years 50..99 are 19xx, 00..49 are 20xx.
        UTC_TIME => match text.get(..2).and_then(|y| y.parse::<u8>().ok()) {
            Some(y) if y >= 50 => format!("19{text}"),
            Some(_) => format!("20{text}"),
            None => return Err(format!("{what} '{}' is not a time", text.escape_debug())),
        },
        GENERALIZED_TIME => text.to_string(),
        _ => return Err(format!("{what} has tag {tag:#04x}, not a time")),
    };
    parse_time(&full).ok_or_else(|| format!("{what} '{}' is not a time", text.escape_debug()))
}

/// `YYYYMMDDhhmmssZ`, the only form RFC 5280 allows.
fn parse_time(s: &str) -> Option<CertTime> {
    if s.len() != 15 || !s.ends_with('Z') || !s[..14].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().ok();
    let (y, mo, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (h, mi, se) = (n(8..10)?, n(10..12)?, n(12..14)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let unix = days_from_civil(y, mo, d) * 86_400 + h * 3_600 + mi * 60 + se;
    Some(CertTime {
        unix,
        text: format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{se:02} UTC"),
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_both_forms() {
        let rows: &[(&str, Option<(i64, &str)>)] = &[
            ("19700101000000Z", Some((0, "1970-01-01 00:00:00 UTC"))),
            (
                "20000229120000Z",
                Some((951_825_600, "2000-02-29 12:00:00 UTC")),
            ),
            (
                "20261130124437Z",
                Some((1_796_042_677, "2026-11-30 12:44:37 UTC")),
            ),
            ("2026113012443Z", None),
            ("20261330124437Z", None),
            ("20261130124437+", None),
        ];
        for (s, want) in rows {
            let got = parse_time(s).map(|t| (t.unix, t.text));
            assert_eq!(got, want.map(|(u, t)| (u, t.to_string())), "{s}");
        }
        let mut r = Reader(b"\x17\x0d491231235959Z\x17\x0d500101000000Z");
        assert_eq!(
            read_time(&mut r, "a").map(|t| t.text),
            Ok("2049-12-31 23:59:59 UTC".into())
        );
        assert_eq!(
            read_time(&mut r, "b").map(|t| t.text),
            Ok("1950-01-01 00:00:00 UTC".into())
        );
    }

    #[test]
    fn malformed_certificates_say_which_part() {
        let rows: &[(&[u8], &str)] = &[
            (b"", "Certificate is cut short"),
            (b"\x02\x01\x00", "Certificate has tag 0x02"),
            (b"\x30\x05\x30\x03\x02\x01", "Certificate is cut short"),
            (b"\x30\x02\x31\x00", "tbsCertificate has tag 0x31"),
            (b"\x30\x07\x30\x05\xa0\x03\x02\x01\x07", "unknown version"),
            (
                b"\x30\x04\x30\x02\x02\x00",
                "signature algorithm is cut short",
            ),
        ];
        for (der, want) in rows {
            let err = parse_certificate(der).err().unwrap_or_default();
            assert!(err.contains(want), "{der:02x?}: {err}");
        }
    }
}
