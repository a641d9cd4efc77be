//! Time stamps in payloads: D2000-style masks (`yyyy-mm-dd hh:mi:ss.mss`), `UNIX`, `UNIXMS` and
//! `ISO8601`, and the time zone a mask without a zone is read in.

use chrono::{DateTime, FixedOffset, Local, NaiveDate, NaiveDateTime, TimeZone as _, Utc};
use serde_json::Value as Json;

/// The zone of time stamps that do not carry their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeZone {
    Local,
    Utc,
    Fixed(FixedOffset),
}

impl TimeZone {
    /// `local`, `UTC`, or an offset such as `+01:00`, `-0530`, `+2`.
    pub fn parse(text: &str) -> Result<TimeZone, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("local") || t.is_empty() {
            return Ok(TimeZone::Local);
        }
        if t.eq_ignore_ascii_case("utc") || t.eq_ignore_ascii_case("z") {
            return Ok(TimeZone::Utc);
        }
        let (sign, rest) = match t.as_bytes()[0] {
            b'+' => (1, &t[1..]),
            b'-' => (-1, &t[1..]),
            _ => return Err("expected local, UTC, or an offset such as +01:00".into()),
        };
        let (h, m) = match rest.split_once(':') {
            Some((h, m)) => (h, m),
            // `hhmm`; only ASCII can be split by bytes (anything else is refused below).
            None if rest.len() == 4 && rest.is_ascii() => rest.split_at(2),
            None => (rest, "0"),
        };
        let h: i32 = h
            .parse()
            .map_err(|_| format!("bad hours in offset '{t}'"))?;
        let m: i32 = m
            .parse()
            .map_err(|_| format!("bad minutes in offset '{t}'"))?;
        // A second sign (`+-5`) reads as a negative number: out of range too, not an overflow.
        if !(0..=23).contains(&h) || !(0..=59).contains(&m) {
            return Err(format!("offset '{t}' is out of range"));
        }
        FixedOffset::east_opt(sign * (h * 3600 + m * 60))
            .map(TimeZone::Fixed)
            .ok_or_else(|| format!("offset '{t}' is out of range"))
    }

    fn resolve(self, naive: NaiveDateTime) -> Option<i64> {
        let utc = match self {
            TimeZone::Utc => naive.and_utc(),
            TimeZone::Fixed(off) => off.from_local_datetime(&naive).single()?.to_utc(),
            // In the hour a clock goes back the earlier instant is taken; a time that does not
            // exist (the hour skipped in spring) does not parse.
            TimeZone::Local => Local.from_local_datetime(&naive).earliest()?.to_utc(),
        };
        utc.timestamp_nanos_opt()
    }
}

/// A field of a D2000 mask, with its fixed number of digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Year4,
    Year2,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Millis,
}

impl Field {
    fn width(self) -> usize {
        match self {
            Field::Year4 => 4,
            Field::Millis => 3,
            _ => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Field(Field),
    Literal(char),
}

/// How a time field is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeMask {
    /// Seconds since the Unix epoch (fractions allowed), as a number or numeric text.
    Unix,
    /// Milliseconds since the Unix epoch.
    UnixMs,
    /// ISO 8601 / RFC 3339 date-time; without a zone it is read in the station's zone.
    Iso8601,
    Pattern(Vec<Part>),
}

const TOKENS: [(&str, Field); 8] = [
    ("yyyy", Field::Year4),
    ("mss", Field::Millis),
    ("yy", Field::Year2),
    ("mm", Field::Month),
    ("dd", Field::Day),
    ("hh", Field::Hour),
    ("mi", Field::Minute),
    ("ss", Field::Second),
];

impl TimeMask {
    pub fn parse(text: &str) -> Result<TimeMask, String> {
        match text.trim().to_ascii_uppercase().as_str() {
            "UNIX" => return Ok(TimeMask::Unix),
            "UNIXMS" => return Ok(TimeMask::UnixMs),
            "ISO8601" | "ISO 8601" | "RFC3339" => return Ok(TimeMask::Iso8601),
            _ => {}
        }
        let mut parts = Vec::new();
        let mut rest = text;
        'outer: while let Some(c) = rest.chars().next() {
            for (token, field) in TOKENS {
                if rest.len() >= token.len()
                    && rest.is_char_boundary(token.len())
                    && rest[..token.len()].eq_ignore_ascii_case(token)
                {
                    if parts.contains(&Part::Field(field)) {
                        return Err(format!("'{token}' appears twice"));
                    }
                    parts.push(Part::Field(field));
                    rest = &rest[token.len()..];
                    continue 'outer;
                }
            }
            // 'T' and 'Z' stand in ISO-style time stamps; any other letter or digit is most likely
            // a mistyped field, which would otherwise silently never match.
            if c.is_ascii_alphanumeric() && !matches!(c, 'T' | 't' | 'Z' | 'z') {
                return Err(format!(
                    "'{c}' at position {} is neither a field (yyyy yy mm dd hh mi ss mss) nor a \
                     separator",
                    text.len() - rest.len() + 1
                ));
            }
            parts.push(Part::Literal(c));
            rest = &rest[c.len_utf8()..];
        }
        let has = |f| parts.contains(&Part::Field(f));
        if !(has(Field::Year4) || has(Field::Year2)) || !has(Field::Month) || !has(Field::Day) {
            return Err(
                "a mask needs a year (yyyy or yy), a month (mm) and a day (dd), or is \
                        UNIX, UNIXMS or ISO8601"
                    .into(),
            );
        }
        if has(Field::Year4) && has(Field::Year2) {
            return Err("a mask has either yyyy or yy, not both".into());
        }
        Ok(TimeMask::Pattern(parts))
    }

    /// Reads a time field into nanoseconds since the epoch.
    pub fn read(&self, value: &Json, zone: TimeZone) -> Result<i64, String> {
        if let Some(whole) = value.as_i64() {
            return self.read_whole(whole);
        }
        match (self, value) {
            (_, Json::String(s)) => self.read_text(s, zone),
            (TimeMask::Unix, _) => epoch_ns(value, 1_000_000_000),
            (TimeMask::UnixMs, _) => epoch_ns(value, 1_000_000),
            (TimeMask::Iso8601 | TimeMask::Pattern(_), _) => {
                Err("expected a date-time string".into())
            }
        }
    }

    /// [`TimeMask::read`] of a whole number that fits 64 bits (no JSON value made of it).
    pub fn read_whole(&self, whole: i64) -> Result<i64, String> {
        let unit_ns = self
            .unit_ns()
            .ok_or_else(|| "expected a date-time string".to_string())?;
        whole
            .checked_mul(unit_ns)
            .ok_or_else(|| "out of range".to_string())
    }

    /// [`TimeMask::read_whole`] when it reads the number: a count of seconds or milliseconds
    /// that fits. The usual item time (Kepware's `"t":1700000000000`) is read here, in the
    /// reader's loop, without a warning's text in reach.
    #[inline]
    pub fn whole_ns(&self, whole: i64) -> Option<i64> {
        whole.checked_mul(self.unit_ns()?)
    }

    /// Nanoseconds per unit of an epoch count mask.
    #[inline]
    fn unit_ns(&self) -> Option<i64> {
        match self {
            TimeMask::Unix => Some(1_000_000_000),
            TimeMask::UnixMs => Some(1_000_000),
            TimeMask::Iso8601 | TimeMask::Pattern(_) => None,
        }
    }

    /// [`TimeMask::read`] of a string field, given as its text (no JSON value made of it).
    pub fn read_text(&self, text: &str, zone: TimeZone) -> Result<i64, String> {
        match self {
            TimeMask::Unix => epoch_ns_text(text.trim(), 1_000_000_000),
            TimeMask::UnixMs => epoch_ns_text(text.trim(), 1_000_000),
            TimeMask::Iso8601 => read_iso8601(text, zone),
            TimeMask::Pattern(parts) => read_pattern(parts, text, zone),
        }
    }
}

/// A count of `unit_ns` since the epoch, as a JSON value that is neither a string nor a whole
/// number of 64 bits.
fn epoch_ns(value: &Json, unit_ns: i64) -> Result<i64, String> {
    match value {
        // Whole numbers of 64 bits are read_whole's.
        Json::Number(n) => epoch_ns_text(&n.to_string(), unit_ns),
        _ => Err("expected a number".into()),
    }
}

/// A count of `unit_ns` since the epoch written as `text`. Whole numbers stay in integer
/// arithmetic so that milliseconds are exact; fractions are rounded to nanoseconds.
fn epoch_ns_text(text: &str, unit_ns: i64) -> Result<i64, String> {
    let out_of_range = || "out of range".to_string();
    if let Ok(whole) = text.parse::<i64>() {
        return whole.checked_mul(unit_ns).ok_or_else(out_of_range);
    }
    let v: f64 = text.parse().map_err(|_| "expected a number".to_string())?;
    if !v.is_finite() || v.abs() * unit_ns as f64 >= 9.2e18 {
        return Err(out_of_range());
    }
    let whole = v.trunc() as i64;
    let fraction = ((v - v.trunc()) * unit_ns as f64).round() as i64;
    whole
        .checked_mul(unit_ns)
        .and_then(|ns| ns.checked_add(fraction))
        .ok_or_else(out_of_range)
}

fn read_iso8601(text: &str, zone: TimeZone) -> Result<i64, String> {
    // A time stamp rarely has spaces around it: look at its ends before a full trim.
    let spaced = |c: Option<&u8>| c.is_none_or(|c| !c.is_ascii_graphic());
    let t = if spaced(text.as_bytes().first()) || spaced(text.as_bytes().last()) {
        text.trim()
    } else {
        text
    };
    if let Some(ns) = rfc3339_plain(t) {
        return Ok(ns);
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return d.timestamp_nanos_opt().ok_or_else(|| "out of range".into());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, format) {
            return zone
                .resolve(naive)
                .ok_or_else(|| "does not exist in the station's time zone".into());
        }
    }
    Err("not an ISO 8601 date-time".into())
}

fn read_pattern(parts: &[Part], text: &str, zone: TimeZone) -> Result<i64, String> {
    let (mut year, mut month, mut day) = (0i32, 1u32, 1u32);
    let (mut hour, mut minute, mut second, mut millis) = (0u32, 0u32, 0u32, 0u32);
    let mut rest = text.trim();
    for part in parts {
        match part {
            Part::Literal(c) => {
                rest = rest
                    .strip_prefix(*c)
                    .ok_or_else(|| format!("expected '{c}' where '{rest}' stands"))?;
            }
            Part::Field(f) => {
                let w = f.width();
                let digits = rest
                    .get(..w)
                    .filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
                let digits =
                    digits.ok_or_else(|| format!("expected {w} digits where '{rest}' stands"))?;
                let n: u32 = digits.parse().map_err(|_| "bad digits".to_string())?;
                rest = &rest[w..];
                match f {
                    Field::Year4 => year = n as i32,
                    Field::Year2 => year = 2000 + n as i32,
                    Field::Month => month = n,
                    Field::Day => day = n,
                    Field::Hour => hour = n,
                    Field::Minute => minute = n,
                    Field::Second => second = n,
                    Field::Millis => millis = n,
                }
            }
        }
    }
    if !rest.is_empty() {
        return Err(format!("'{rest}' is left over after the mask"));
    }
    let naive = NaiveDate::from_ymd_opt(year, month, day)
        .and_then(|d| d.and_hms_milli_opt(hour, minute, second, millis))
        .ok_or("not a valid date and time")?;
    zone.resolve(naive)
        .ok_or_else(|| "does not exist in the station's time zone".into())
}

/// Nanoseconds of a UTC date-time, for tests and messages.
pub fn utc_ns(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, nanos: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .and_then(|t| t.timestamp_nanos_opt())
        .map_or(0, |ns| ns + i64::from(nanos))
}

/// The common RFC 3339 form, `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM)` with a year from
/// 1970 to 2199, read by hand: chrono's parser costs more than the rest of a small message.
/// Anything else (leap seconds, lower-case separators, other years) is `None`, and chrono reads
/// it, so both give the same instant for what this accepts.
fn rfc3339_plain(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    let head: &[u8; 19] = b.get(..19)?.try_into().ok()?;
    if b.len() < 20 || !head_fits(head) {
        return None;
    }
    let digit = |i: usize| head[i].wrapping_sub(b'0');
    let two = |i: usize| i64::from(digit(i) * 10 + digit(i + 1));
    let year = two(0) * 100 + two(2);
    let (month, day) = (two(5), two(8));
    let (hour, minute, second) = (two(11), two(14), two(17));
    let since = usize::try_from(year - FIRST_YEAR).ok()?;
    let (Some(&before_year), Some(&before_next)) =
        (DAYS_BEFORE_YEAR.get(since), DAYS_BEFORE_YEAR.get(since + 1))
    else {
        return None;
    };
    let leap = before_next - before_year == 366;
    if !(1..=12).contains(&month) || day < 1 {
        return None;
    }
    if day > days_in_month(leap, month) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0i64;
    if b[at] == b'.' {
        at += 1;
        let start = at;
        while let Some(d) = b.get(at).map(|c| c.wrapping_sub(b'0')).filter(|d| *d <= 9) {
            nanos = nanos * 10 + i64::from(d);
            at += 1;
            if at - start > 9 {
                return None;
            }
        }
        let len = at - start;
        if len == 0 {
            return None;
        }
        nanos *= NANOS_PER_DIGITS[len];
    }
    let offset_s = match b.get(at)? {
        b'Z' if b.len() == at + 1 => 0,
        sign @ (b'+' | b'-') if b.len() == at + 6 && b[at + 3] == b':' => {
            let zone = [b[at + 1], b[at + 2], b[at + 4], b[at + 5]].map(|c| c.wrapping_sub(b'0'));
            if zone.iter().any(|d| *d > 9) {
                return None;
            }
            let (h, m) = (
                i64::from(zone[0] * 10 + zone[1]),
                i64::from(zone[2] * 10 + zone[3]),
            );
            if h > 23 || m > 59 {
                return None;
            }
            let s = h * 3600 + m * 60;
            if *sign == b'-' {
                -s
            } else {
                s
            }
        }
        _ => return None,
    };
    let days = i64::from(before_year)
        + DAYS_BEFORE_MONTH[month as usize]
        + i64::from(leap && month > 2)
        + day
        - 1;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    Some(seconds * 1_000_000_000 + nanos)
}

/// What one unit of a fraction of `n` digits is in nanoseconds (`n` from 1 to 9).
const NANOS_PER_DIGITS: [i64; 10] = [
    0,
    100_000_000,
    10_000_000,
    1_000_000,
    100_000,
    10_000,
    1_000,
    100,
    10,
    1,
];

/// The head `YYYY-MM-DDTHH:MM:SS` with a zero at each digit's place: XOR-ed with it, a
/// well-formed head has each digit's value (0 to 9) at a digit's place and zero elsewhere.
const HEAD: &[u8; 19] = b"0000-00-00T00:00:00";

/// Where the head is looked at, eight bytes at a time (the last two words overlap).
const HEAD_WORDS: [usize; 3] = [0, 8, 11];

/// Eight bytes of `b` from `at` as a little-endian word.
const fn word_at(b: &[u8; 19], at: usize) -> u64 {
    let mut w = 0u64;
    let mut i = 0;
    while i < 8 {
        w |= (b[at + i] as u64) << (8 * i);
        i += 1;
    }
    w
}

/// For each byte of a head word, what may be added to it before its top bit is set by more
/// than the byte may hold: 0x7F - 9 at a digit's place, 0x7F (nothing may be there) elsewhere.
const fn room_at(at: usize) -> u64 {
    let mut w = 0u64;
    let mut i = 0;
    while i < 8 {
        let room = if HEAD[at + i] == b'0' { 0x7F - 9 } else { 0x7F };
        w |= room << (8 * i);
        i += 1;
    }
    w
}

const HEAD_XOR: [u64; 3] = [
    word_at(HEAD, HEAD_WORDS[0]),
    word_at(HEAD, HEAD_WORDS[1]),
    word_at(HEAD, HEAD_WORDS[2]),
];
const HEAD_ROOM: [u64; 3] = [
    room_at(HEAD_WORDS[0]),
    room_at(HEAD_WORDS[1]),
    room_at(HEAD_WORDS[2]),
];

/// Whether `head` has a digit at each digit's place of `YYYY-MM-DDTHH:MM:SS` and the separators
/// at theirs, in three word-wide looks instead of nineteen: a byte XOR-ed with [`HEAD`] that
/// exceeds its place's limit (9 or 0) sets its top bit, itself or once its room is added.
fn head_fits(head: &[u8; 19]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    (0..3).all(|k| {
        let t = word_at(head, HEAD_WORDS[k]) ^ HEAD_XOR[k];
        (t | t.wrapping_add(HEAD_ROOM[k])) & HIGH == 0
    })
}

/// The first year the hand reader takes, and one past the last.
const FIRST_YEAR: i64 = 1970;
const END_YEAR: i64 = 2200;

const fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days from 1970-01-01 to January 1 of each year from [`FIRST_YEAR`] to [`END_YEAR`]
/// (inclusive: a year's length is the next entry minus its own).
const DAYS_BEFORE_YEAR: [i32; (END_YEAR - FIRST_YEAR + 1) as usize] = {
    let mut t = [0i32; (END_YEAR - FIRST_YEAR + 1) as usize];
    let mut i = 1;
    while i < t.len() {
        let year = FIRST_YEAR + i as i64 - 1;
        t[i] = t[i - 1] + if is_leap(year) { 366 } else { 365 };
        i += 1;
    }
    t
};

/// Days of a common year before the first of each month (1 to 12).
const DAYS_BEFORE_MONTH: [i64; 13] = [0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];

fn days_in_month(leap: bool, month: i64) -> i64 {
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Found by the `time_mask` fuzz target: a four-byte offset with a two-byte character used
    /// to be split inside the character.
    #[test]
    fn offset_with_multibyte_characters_is_an_error_not_a_panic() {
        assert!(TimeZone::parse("+2\u{411}n").is_err());
        assert!(TimeZone::parse("-\u{e9}12").is_err());
        assert!(TimeZone::parse("+0130").is_ok());
        // Found by the `config` target: a sign after the sign made hours * 3600 overflow.
        assert!(TimeZone::parse("+-0000000000184520476").is_err());
        assert!(TimeZone::parse("+-1").is_err());
        assert!(TimeZone::parse("-01:-30").is_err());
    }

    #[test]
    fn masks_that_parse_and_read() {
        let utc = TimeZone::Utc;
        let plus1 = TimeZone::parse("+01:00").unwrap();
        let rows: &[(&str, Json, TimeZone, i64)] = &[
            (
                "yyyy-mm-dd hh:mi:ss.mss",
                json!("2026-11-23 10:00:00.123"),
                utc,
                utc_ns(2026, 11, 23, 10, 0, 0, 123_000_000),
            ),
            (
                "dd.mm.yyyy hh:mi:ss",
                json!("23.11.2026 10:00:05"),
                plus1,
                utc_ns(2026, 11, 23, 9, 0, 5, 0),
            ),
            (
                "yy/mm/dd",
                json!("26/11/23"),
                utc,
                utc_ns(2026, 11, 23, 0, 0, 0, 0),
            ),
            (
                "YYYY-MM-DDTHH:MI:SS",
                json!("2026-11-23T10:00:00"),
                utc,
                utc_ns(2026, 11, 23, 10, 0, 0, 0),
            ),
            (
                "UNIX",
                json!(1_795_428_000),
                utc,
                utc_ns(2026, 11, 23, 10, 0, 0, 0),
            ),
            (
                "unix",
                json!("1795428000.5"),
                utc,
                utc_ns(2026, 11, 23, 10, 0, 0, 500_000_000),
            ),
            (
                "UNIXMS",
                json!(1_795_428_000_123i64),
                utc,
                utc_ns(2026, 11, 23, 10, 0, 0, 123_000_000),
            ),
            (
                "ISO8601",
                json!("2020-02-12T15:15:25.123456789Z"),
                plus1,
                utc_ns(2020, 2, 12, 15, 15, 25, 123_456_789),
            ),
            (
                "ISO8601",
                json!("2023-05-02T11:18:48.123456+00:00"),
                utc,
                utc_ns(2023, 5, 2, 11, 18, 48, 123_456_000),
            ),
            (
                "ISO8601",
                json!("2026-11-23T10:00:00+02:00"),
                utc,
                utc_ns(2026, 11, 23, 8, 0, 0, 0),
            ),
            (
                "ISO8601",
                json!("2026-11-23T10:00:00"),
                plus1,
                utc_ns(2026, 11, 23, 9, 0, 0, 0),
            ),
        ];
        for (mask, value, zone, want) in rows {
            let m = TimeMask::parse(mask).unwrap_or_else(|e| panic!("{mask}: {e}"));
            let got = m
                .read(value, *zone)
                .unwrap_or_else(|e| panic!("{mask} {value}: {e}"));
            assert_eq!(got, *want, "{mask} {value}");
        }
    }

    #[test]
    fn malformed_masks() {
        for (mask, reason) in [
            ("hh:mi:ss", "needs a year"),
            ("yyyy-mm", "needs a year"),
            ("yyyy-mm-dd yyyy", "twice"),
            ("yyyy-mm-dd x", "'x' at position 12"),
            ("yyyy-mm-dd hh:mi:ss.ms", "'m' at position 21"),
            ("yyyy-yy-mm-dd", "not both"),
            ("", "needs a year"),
        ] {
            let e = TimeMask::parse(mask).expect_err(mask);
            assert!(e.contains(reason), "{mask}: {e}");
        }
    }

    #[test]
    fn values_that_do_not_fit_the_mask() {
        let utc = TimeZone::Utc;
        let rows: &[(&str, Json)] = &[
            ("yyyy-mm-dd hh:mi:ss.mss", json!("2026-11-23 10:00:00")),
            (
                "yyyy-mm-dd hh:mi:ss.mss",
                json!("2026-11-23 10:00:00.123 extra"),
            ),
            ("yyyy-mm-dd", json!("2026-13-01")),
            ("yyyy-mm-dd", json!("2026-02-30")),
            ("yyyy-mm-dd", json!(20261123)),
            ("UNIX", json!("soon")),
            ("UNIX", json!(true)),
            ("UNIXMS", json!(1e300)),
            ("ISO8601", json!("2020-02-12T15:15...")),
            ("ISO8601", json!(12)),
        ];
        for (mask, value) in rows {
            let m = TimeMask::parse(mask).unwrap();
            assert!(m.read(value, utc).is_err(), "{mask} {value}");
        }
    }

    /// The reader's quick read of a whole number gives what `read` gives, or leaves the number
    /// to it (which then warns): every mask, both signs, the ends of 64 bits.
    #[test]
    fn whole_numbers_read_quickly_as_read_reads_them() {
        let wholes = [
            0,
            1,
            -1,
            1_700_000_000,
            1_700_000_000_123,
            i64::MAX / 1_000_000,
            i64::MAX / 1_000_000 + 1,
            i64::MIN / 1_000_000_000 - 1,
            i64::MAX,
            i64::MIN,
        ];
        for mask in ["UNIX", "UNIXMS", "ISO8601", "yyyy-mm-dd"] {
            let m = TimeMask::parse(mask).unwrap();
            for whole in wholes {
                let read = m.read(&json!(whole), TimeZone::Utc);
                match m.whole_ns(whole) {
                    Some(ns) => assert_eq!(read, Ok(ns), "{mask} {whole}"),
                    None => assert!(read.is_err(), "{mask} {whole}: {read:?}"),
                }
            }
        }
    }

    #[test]
    fn time_zones() {
        assert_eq!(TimeZone::parse("local").unwrap(), TimeZone::Local);
        assert_eq!(TimeZone::parse("UTC").unwrap(), TimeZone::Utc);
        for (text, secs) in [("+01:00", 3600), ("-0530", -19800), ("+2", 7200)] {
            assert_eq!(
                TimeZone::parse(text).unwrap(),
                TimeZone::Fixed(FixedOffset::east_opt(secs).unwrap()),
                "{text}"
            );
        }
        for bad in ["CET", "+25:00", "+01:99", "1"] {
            assert!(TimeZone::parse(bad).is_err(), "{bad}");
        }
    }

    /// Near misses of well-formed stamps, each byte of the head replaced by bytes around the
    /// digits and separators, on dates across the years the hand reader takes (leap days, month
    /// ends, its first and last year): whatever it reads, chrono reads as the same instant.
    #[test]
    fn plain_rfc3339_never_differs_from_chrono() {
        let dates = [
            "1970-01-01T00:00:00Z",
            "1999-12-31T23:59:59.9Z",
            "2000-02-29T12:30:00+01:00",
            "2100-02-28T00:00:00.000001Z",
            "2100-03-01T00:00:00-23:59",
            "2024-02-29T23:59:59.123456789Z",
            "2199-12-31T23:59:59Z",
            "2026-04-30T08:07:06.5+05:30",
        ];
        let mut read = 0;
        for date in dates {
            for place in 0..19 {
                for b in [
                    b'/', b'0', b'1', b'2', b'3', b'5', b'9', b':', b'-', b'T', b'A',
                ] {
                    let mut t = date.as_bytes().to_vec();
                    t[place] = b;
                    let t = String::from_utf8(t).unwrap();
                    let t = t.as_str();
                    let chrono = DateTime::parse_from_rfc3339(t)
                        .ok()
                        .and_then(|d| d.timestamp_nanos_opt());
                    // `None` leaves the stamp to chrono: never wrong, only slower.
                    if let Some(ns) = rfc3339_plain(t) {
                        read += 1;
                        assert_eq!(Some(ns), chrono, "{t}");
                    }
                }
            }
        }
        assert!(read > 200, "only {read} stamps were read by hand");
    }

    /// The hand-read RFC 3339 form gives chrono's instant; what it leaves is left to chrono.
    #[test]
    fn plain_rfc3339_matches_chrono() {
        for t in [
            "2026-12-06T17:13:35Z",
            "2026-12-06T17:13:35.123Z",
            "2026-12-06T17:13:35.123456789+01:30",
            "2024-02-29T00:00:00-05:00",
            "1970-01-01T00:00:00Z",
            "2199-12-31T23:59:59.5Z",
            "2000-03-01T12:00:00.000000001+00:00",
            "2026-12-06T17:13:35.12345678-11:45",
            "2026-12-06T17:13:35.1Z",
        ] {
            let chrono = DateTime::parse_from_rfc3339(t)
                .unwrap()
                .timestamp_nanos_opt()
                .unwrap();
            assert_eq!(rfc3339_plain(t), Some(chrono), "{t}");
        }
        for t in [
            "2026-12-06t17:13:35Z",
            "2026-12-06T17:13:60Z",
            "2023-02-29T00:00:00Z",
            "2026-12-06T17:13:35",
            "2026-12-06T17:13:35.Z",
            "2026-12-06T17:13:35.1234567890Z",
            "1969-12-31T23:59:59Z",
            "2026-12-06T17:13:35+0100",
            "2026-12-06 17:13:35Z",
            "2026-1a-06T17:13:35Z",
            "2026-12-06T17:13:3/Z",
            "2026-12-06T17:13:35+0a:00",
            "2026-12-06T17:13:35+01:00 ",
            "2026-12-06T17:13:35.12a4Z",
        ] {
            assert_eq!(rfc3339_plain(t), None, "{t}");
        }
        // Spaces around a time stamp, and other white space, are trimmed before it is read.
        let utc = TimeZone::parse("UTC").unwrap();
        for t in [
            " 2026-12-06T17:13:35Z",
            "2026-12-06T17:13:35Z\n",
            "\u{3000}2026-12-06T17:13:35Z",
        ] {
            assert_eq!(
                read_iso8601(t, utc),
                Ok(utc_ns(2026, 12, 6, 17, 13, 35, 0)),
                "{t:?}"
            );
        }
    }
}
