//! The recording file of `record`, `replay` and `suggest` (docs/commissioning.md): JSON Lines, a
//! header object and then one object per received message, optionally gzip-compressed.
//!
//! JSON Lines was chosen so that a person can read a recording with `zcat | less`, other tools
//! with any JSON reader, and so that a stopped recording is never cut inside a message: each
//! message is one whole line, written at once.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};

/// The value of the header's `format` field.
pub const FORMAT: &str = "mqtt-line-recording";
/// The format version this sim-host writes and reads.
pub const VERSION: u32 = 1;
/// The longest line read from a recording: a payload of up to 256 MiB in base64, with room.
pub(crate) const MAX_LINE: usize = 360 * 1024 * 1024;

/// Why a recording cannot be written or read; each names the file and, when reading, the line.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} line {line}: {reason}")]
    Invalid {
        path: PathBuf,
        line: u64,
        reason: String,
    },
}

/// The first line of a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    /// When the recording started (RFC 3339, UTC).
    pub started: String,
    /// Where it was recorded: the broker and the subscription.
    #[serde(default)]
    pub source: Source,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Source {
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub topic_filter: String,
    #[serde(default)]
    pub protocol_version: u8,
}

/// One received message as stored: text payloads as `payload`, anything that is not valid UTF-8
/// as `payload_base64` (exactly one of them is present), so the bytes come back exactly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Receive time, RFC 3339 UTC with nanoseconds.
    pub time: String,
    pub topic: String,
    pub qos: u8,
    #[serde(default)]
    pub retain: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
    /// MQTT 5 properties, only when there were any.
    #[serde(default, skip_serializing_if = "Properties::is_empty")]
    pub properties: Properties,
}

/// The MQTT 5 PUBLISH properties a subscriber receives (the topic alias is resolved away).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Properties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_format_indicator: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_expiry_interval: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_topic: Option<String>,
    /// Correlation data in base64 (it is binary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_data_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_properties: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscription_identifiers: Vec<usize>,
}

impl Properties {
    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }
}

/// A message read back: the payload as bytes, the time as Unix nanoseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub time_ns: i64,
    pub topic: String,
    pub qos: u8,
    pub retain: bool,
    pub payload: Vec<u8>,
    pub properties: Properties,
}

impl Message {
    pub fn to_stored(&self) -> StoredMessage {
        let (payload, payload_base64) = match std::str::from_utf8(&self.payload) {
            Ok(text) => (Some(text.to_string()), None),
            Err(_) => (None, Some(BASE64.encode(&self.payload))),
        };
        StoredMessage {
            time: rfc3339(self.time_ns),
            topic: self.topic.clone(),
            qos: self.qos,
            retain: self.retain,
            payload,
            payload_base64,
            properties: self.properties.clone(),
        }
    }

    fn from_stored(s: StoredMessage) -> Result<Message, String> {
        let time_ns = chrono::DateTime::parse_from_rfc3339(&s.time)
            .map_err(|e| format!("time '{}' is not RFC 3339: {e}", s.time))?
            .timestamp_nanos_opt()
            .ok_or_else(|| format!("time '{}' is out of range", s.time))?;
        if s.qos > 2 {
            return Err(format!("qos {} is not 0, 1 or 2", s.qos));
        }
        let payload = match (s.payload, s.payload_base64) {
            (Some(text), None) => text.into_bytes(),
            (None, Some(b64)) => BASE64
                .decode(b64.as_bytes())
                .map_err(|e| format!("payload_base64 is not base64: {e}"))?,
            (None, None) => Vec::new(),
            (Some(_), Some(_)) => {
                return Err("both payload and payload_base64 are given".to_string())
            }
        };
        Ok(Message {
            time_ns,
            topic: s.topic,
            qos: s.qos,
            retain: s.retain,
            payload,
            properties: s.properties,
        })
    }
}

/// Unix nanoseconds as RFC 3339 UTC with nanoseconds.
pub fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn is_gzip_name(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// Writes a recording line by line; `.gz` files are gzip-compressed.
pub struct RecordingWriter {
    path: PathBuf,
    out: Box<dyn Write + Send>,
    gzip: Option<GzEncoder<BufWriter<File>>>,
    line: Vec<u8>,
}

impl RecordingWriter {
    pub fn create(path: &Path, header: &Header) -> Result<RecordingWriter, RecordingError> {
        let io_err = |source| RecordingError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::create(path).map_err(io_err)?;
        let buffered = BufWriter::with_capacity(256 * 1024, file);
        let (out, gzip): (Box<dyn Write + Send>, _) = if is_gzip_name(path) {
            (
                Box::new(io::sink()),
                Some(GzEncoder::new(buffered, Compression::fast())),
            )
        } else {
            (Box::new(buffered), None)
        };
        let mut writer = RecordingWriter {
            path: path.to_path_buf(),
            out,
            gzip,
            line: Vec::with_capacity(1024),
        };
        writer.write_json(header)?;
        Ok(writer)
    }

    fn sink(&mut self) -> &mut dyn Write {
        match self.gzip.as_mut() {
            Some(g) => g,
            None => &mut self.out,
        }
    }

    fn io(&self, source: io::Error) -> RecordingError {
        RecordingError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Serialises first and writes the whole line in one call, so a stop between messages
    /// never leaves half a line behind.
    fn write_json<T: Serialize>(&mut self, value: &T) -> Result<(), RecordingError> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        serde_json::to_writer(&mut line, value)
            .map_err(|e| self.io(io::Error::new(io::ErrorKind::InvalidData, e)))?;
        line.push(b'\n');
        let result = self.sink().write_all(&line);
        self.line = line;
        result.map_err(|e| self.io(e))
    }

    /// Appends one message; returns the bytes of its line.
    pub fn write(&mut self, message: &Message) -> Result<usize, RecordingError> {
        self.write_json(&message.to_stored())?;
        Ok(self.line.len())
    }

    /// Flushes everything to the file and ends the gzip stream.
    pub fn finish(mut self) -> Result<(), RecordingError> {
        match self.gzip.take() {
            Some(g) => {
                let mut inner = g.finish().map_err(|e| self.io(e))?;
                inner.flush().map_err(|e| self.io(e))
            }
            None => self.out.flush().map_err(|e| self.io(e)),
        }
    }
}

/// Reads a recording; gzip is recognised by its first bytes, whatever the file is called.
pub struct RecordingReader {
    path: PathBuf,
    input: Box<dyn BufRead>,
    line_no: u64,
    buf: Vec<u8>,
    pub header: Header,
}

impl RecordingReader {
    pub fn open(path: &Path) -> Result<RecordingReader, RecordingError> {
        let io_err = |source| RecordingError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = BufReader::new(File::open(path).map_err(io_err)?);
        let gzip = file.fill_buf().map_err(io_err)?.starts_with(&[0x1f, 0x8b]);
        let input: Box<dyn BufRead> = if gzip {
            Box::new(BufReader::with_capacity(
                256 * 1024,
                MultiGzDecoder::new(file),
            ))
        } else {
            Box::new(file)
        };
        let mut reader = RecordingReader {
            path: path.to_path_buf(),
            input,
            line_no: 0,
            buf: Vec::new(),
            header: Header {
                format: String::new(),
                version: 0,
                started: String::new(),
                source: Source::default(),
            },
        };
        let invalid = |reason: String| RecordingError::Invalid {
            path: path.to_path_buf(),
            line: 1,
            reason,
        };
        if !reader.next_line()? {
            return Err(invalid("the file is empty, not a recording".into()));
        }
        let header: Header = serde_json::from_slice(&reader.buf)
            .map_err(|e| invalid(format!("not a recording header: {e}")))?;
        if header.format != FORMAT {
            return Err(invalid(format!(
                "format '{}' is not '{FORMAT}'",
                header.format.escape_debug()
            )));
        }
        if header.version != VERSION {
            return Err(invalid(format!(
                "format version {} is not supported (this sim-host reads version {VERSION})",
                header.version
            )));
        }
        reader.header = header;
        Ok(reader)
    }

    /// Reads the next line into `buf` (without its line break); false at the end. A last line
    /// without a line break was cut off while writing and is skipped.
    fn next_line(&mut self) -> Result<bool, RecordingError> {
        self.buf.clear();
        let n = (&mut self.input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut self.buf)
            .map_err(|source| RecordingError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.line_no += 1;
        if n == 0 {
            return Ok(false);
        }
        if self.buf.last() != Some(&b'\n') {
            if self.buf.len() > MAX_LINE {
                return Err(RecordingError::Invalid {
                    path: self.path.clone(),
                    line: self.line_no,
                    reason: format!("the line is longer than {MAX_LINE} bytes"),
                });
            }
            tracing::warn!(
                "{} line {}: the last line is incomplete and was skipped",
                self.path.display(),
                self.line_no
            );
            return Ok(false);
        }
        self.buf.pop();
        Ok(true)
    }

    /// The next message, `None` at the end of the file.
    pub fn next_message(&mut self) -> Result<Option<Message>, RecordingError> {
        loop {
            if !self.next_line()? {
                return Ok(None);
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let invalid = |reason: String| RecordingError::Invalid {
                path: self.path.clone(),
                line: self.line_no,
                reason,
            };
            let stored: StoredMessage = serde_json::from_slice(&self.buf)
                .map_err(|e| invalid(format!("not a message: {e}")))?;
            return Message::from_stored(stored).map(Some).map_err(invalid);
        }
    }

    /// Every message of the file.
    #[cfg(test)]
    pub fn read_all(mut self) -> Result<(Header, Vec<Message>), RecordingError> {
        let mut messages = Vec::new();
        while let Some(m) = self.next_message()? {
            messages.push(m);
        }
        Ok((self.header, messages))
    }
}

/// Whether an MQTT topic filter (`+`, `#`) matches a topic; `$` topics only match filters that
/// name their first level, as brokers do.
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Message> {
        vec![
            Message {
                time_ns: 1_795_428_000_123_456_789,
                topic: "dev/a/up".into(),
                qos: 1,
                retain: true,
                payload: br#"{"t":1}"#.to_vec(),
                properties: Properties::default(),
            },
            Message {
                time_ns: 1_795_428_001_000_000_000,
                topic: "bin".into(),
                qos: 0,
                retain: false,
                payload: vec![0, 0xff, 0x1f, 0x8b, b'\n'],
                properties: Properties {
                    content_type: Some("application/octet-stream".into()),
                    user_properties: vec![("k".into(), "v".into())],
                    ..Properties::default()
                },
            },
            Message {
                time_ns: 1_795_428_002_000_000_000,
                topic: "ctl".into(),
                qos: 2,
                retain: false,
                payload: "a\u{1b}[31m\r\n\u{0}".into(),
                properties: Properties::default(),
            },
        ]
    }

    fn header() -> Header {
        Header {
            format: FORMAT.into(),
            version: VERSION,
            started: rfc3339(0),
            source: Source::default(),
        }
    }

    #[test]
    fn messages_come_back_byte_for_byte_plain_and_gzip() {
        let dir = std::env::temp_dir().join(format!("rec-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for name in ["a.jsonl", "a.jsonl.gz"] {
            let path = dir.join(name);
            let mut w = RecordingWriter::create(&path, &header()).expect("create");
            for m in sample() {
                w.write(&m).expect("write");
            }
            w.finish().expect("finish");
            let (h, back) = RecordingReader::open(&path)
                .expect("open")
                .read_all()
                .expect("read");
            assert_eq!(h, header());
            assert_eq!(back, sample(), "{name}");
        }
        let text = std::fs::read_to_string(dir.join("a.jsonl")).expect("plain");
        assert!(text.contains(r#""payload":"{\"t\":1}""#), "{text}");
        assert!(text.contains(r#""payload_base64":"AP8fiwo=""#), "{text}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn a_cut_last_line_is_skipped_and_bad_lines_are_named() {
        let dir = std::env::temp_dir().join(format!("rec-cut-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let head = serde_json::to_string(&header()).expect("json");
        let good = serde_json::to_string(&sample()[0].to_stored()).expect("json");
        let cut = dir.join("cut.jsonl");
        std::fs::write(&cut, format!("{head}\n{good}\n{{\"time\":\"20")).expect("write");
        let (_, back) = RecordingReader::open(&cut)
            .expect("open")
            .read_all()
            .expect("read");
        assert_eq!(back.len(), 1);
        let bad = dir.join("bad.jsonl");
        std::fs::write(&bad, format!("{head}\n{good}\n{{\"qos\":7}}\n")).expect("write");
        let err = RecordingReader::open(&bad)
            .expect("open")
            .read_all()
            .expect_err("bad line");
        assert!(err.to_string().contains("line 3"), "{err}");
        let other = dir.join("other.jsonl");
        std::fs::write(
            &other,
            "{\"format\":\"x\",\"version\":1,\"started\":\"\"}\n",
        )
        .expect("w");
        let err = RecordingReader::open(&other).err().expect("not ours");
        assert!(err.to_string().contains("format 'x'"), "{err}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn topic_filters_match_as_brokers_do() {
        let cases = [
            ("#", "a/b", true),
            ("#", "$SYS/x", false),
            ("a/+/c", "a/b/c", true),
            ("a/+/c", "a/b/d", false),
            ("a/#", "a", true),
            ("a/b", "a/b", true),
            ("a/b", "a/b/c", false),
            ("+", "a/b", false),
            ("$SYS/#", "$SYS/x", true),
        ];
        for (filter, topic, expected) in cases {
            assert_eq!(filter_matches(filter, topic), expected, "{filter} {topic}");
        }
    }
}
