//! The metric names and data types of a Sparkplug B birth, for `suggest`. sim-host does not link
//! the core (docs/architecture.md), so it reads the few protobuf fields it needs itself: the
//! payload's metrics (field 2), and in each its name (1), data type (4) and is_null (7).

/// One metric announced by a birth.
#[derive(Debug, Clone, PartialEq)]
pub struct BirthMetric {
    pub name: String,
    pub datatype: u32,
    /// A metric born without a value gives its tag nothing to show.
    pub is_null: bool,
}

struct Cursor<'b> {
    buf: &'b [u8],
    pos: usize,
}

impl<'b> Cursor<'b> {
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.buf.get(self.pos)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn bytes(&mut self, len: u64) -> Option<&'b [u8]> {
        let len = usize::try_from(len).ok()?;
        let end = self.pos.checked_add(len)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    /// The next field: its number and, for length-delimited ones, the bytes; varints as value.
    fn field(&mut self) -> Option<(u64, Field<'b>)> {
        let key = self.varint()?;
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.bytes(8)?;
                Field::Skip
            }
            2 => {
                let len = self.varint()?;
                Field::Bytes(self.bytes(len)?)
            }
            5 => {
                self.bytes(4)?;
                Field::Skip
            }
            _ => return None,
        };
        Some((key >> 3, field))
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

enum Field<'b> {
    Varint(u64),
    Bytes(&'b [u8]),
    Skip,
}

/// The named metrics of a birth payload; `None` when it is not a readable protobuf message.
pub fn birth_metrics(payload: &[u8]) -> Option<Vec<BirthMetric>> {
    let mut out = Vec::new();
    let mut c = Cursor {
        buf: payload,
        pos: 0,
    };
    while !c.done() {
        let (number, field) = c.field()?;
        if let (2, Field::Bytes(metric)) = (number, field) {
            if let Some(m) = metric_of(metric)? {
                out.push(m);
            }
        }
    }
    Some(out)
}

fn metric_of(buf: &[u8]) -> Option<Option<BirthMetric>> {
    let mut c = Cursor { buf, pos: 0 };
    let mut name = None;
    let mut datatype = 0;
    let mut is_null = false;
    while !c.done() {
        match c.field()? {
            (1, Field::Bytes(b)) => name = Some(String::from_utf8_lossy(b).into_owned()),
            (4, Field::Varint(v)) => datatype = u32::try_from(v).unwrap_or(0),
            (7, Field::Varint(v)) => is_null = v != 0,
            _ => {}
        }
    }
    Some(name.map(|name| BirthMetric {
        name,
        datatype,
        is_null,
    }))
}

/// The D2000 input type for a Sparkplug data type (docs/sparkplug.md's conversions).
pub fn tag_type(datatype: u32) -> &'static str {
    match datatype {
        1..=8 => "Ci",
        9 | 10 => "Ai",
        11 => "Di",
        13 => "TiA",
        _ => "TxtI",
    }
}

/// The Sparkplug name of a data type, for comments.
pub fn datatype_name(datatype: u32) -> &'static str {
    const NAMES: [&str; 20] = [
        "Unknown", "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64",
        "Float", "Double", "Boolean", "String", "DateTime", "Text", "UUID", "DataSet", "Bytes",
        "File", "Template",
    ];
    NAMES.get(datatype as usize).copied().unwrap_or("Unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn metric(name: &str, datatype: u64, null: bool) -> Vec<u8> {
        let mut m = vec![0x0a, name.len() as u8];
        m.extend_from_slice(name.as_bytes());
        m.push(0x20);
        varint(datatype, &mut m);
        if null {
            m.extend_from_slice(&[0x38, 1]);
        } else {
            m.extend_from_slice(&[0x69, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]); // double_value 1.0
        }
        m
    }

    #[test]
    fn births_give_names_types_and_nulls() {
        let mut p = vec![0x08, 0x96, 0x01]; // timestamp
        for m in [
            metric("Inputs/Temperature", 10, false),
            metric("Mode", 12, true),
        ] {
            p.push(0x12);
            p.push(m.len() as u8);
            p.extend(m);
        }
        p.extend_from_slice(&[0x18, 0]); // seq
        let metrics = birth_metrics(&p).expect("readable");
        assert_eq!(
            metrics,
            vec![
                BirthMetric {
                    name: "Inputs/Temperature".into(),
                    datatype: 10,
                    is_null: false
                },
                BirthMetric {
                    name: "Mode".into(),
                    datatype: 12,
                    is_null: true
                }
            ]
        );
        assert_eq!(tag_type(10), "Ai");
        assert_eq!(datatype_name(12), "String");
    }

    #[test]
    fn garbage_is_refused_not_a_panic() {
        for bad in [&[0x12, 0x50][..], &[0xff; 12], &[0x0b]] {
            assert_eq!(birth_metrics(bad), None, "{bad:?}");
        }
    }
}
