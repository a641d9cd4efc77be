//! The checks MQTT 5 requires of a packet a server sends, on the raw frame, before rumqttc's v5
//! codec reads it. The codec reads properties leniently: it takes a repeated property's last
//! value, lets a property run past the declared property length and does not check value ranges.
//! Here a property section must hold only properties that packet may carry (MQTT 5 2.2.2.2), each
//! at most once except User Property and Subscription Identifier (3.3.2-? etc.), with values in
//! range, strings in UTF-8, and end exactly at its declared length; a PUBLISH topic must be UTF-8.

use std::fmt;

/// How a property's value is encoded.
#[derive(Clone, Copy)]
enum Kind {
    Byte,
    U16,
    U32,
    VarInt,
    Utf8,
    Binary,
    Pair,
}

/// The properties a server may send, with their encoding and name.
fn property(id: u8) -> Option<(Kind, &'static str)> {
    Some(match id {
        0x01 => (Kind::Byte, "Payload Format Indicator"),
        0x02 => (Kind::U32, "Message Expiry Interval"),
        0x03 => (Kind::Utf8, "Content Type"),
        0x08 => (Kind::Utf8, "Response Topic"),
        0x09 => (Kind::Binary, "Correlation Data"),
        0x0B => (Kind::VarInt, "Subscription Identifier"),
        0x11 => (Kind::U32, "Session Expiry Interval"),
        0x12 => (Kind::Utf8, "Assigned Client Identifier"),
        0x13 => (Kind::U16, "Server Keep Alive"),
        0x15 => (Kind::Utf8, "Authentication Method"),
        0x16 => (Kind::Binary, "Authentication Data"),
        0x1A => (Kind::Utf8, "Response Information"),
        0x1C => (Kind::Utf8, "Server Reference"),
        0x1F => (Kind::Utf8, "Reason String"),
        0x21 => (Kind::U16, "Receive Maximum"),
        0x22 => (Kind::U16, "Topic Alias Maximum"),
        0x23 => (Kind::U16, "Topic Alias"),
        0x24 => (Kind::Byte, "Maximum QoS"),
        0x25 => (Kind::Byte, "Retain Available"),
        0x26 => (Kind::Pair, "User Property"),
        0x27 => (Kind::U32, "Maximum Packet Size"),
        0x28 => (Kind::Byte, "Wildcard Subscription Available"),
        0x29 => (Kind::Byte, "Subscription Identifier Available"),
        0x2A => (Kind::Byte, "Shared Subscription Available"),
        _ => return None,
    })
}

/// Which properties each packet type from a server may carry.
fn allowed(kind: u8) -> &'static [u8] {
    match kind {
        2 => &[
            0x11, 0x21, 0x24, 0x25, 0x27, 0x12, 0x22, 0x1F, 0x26, 0x28, 0x29, 0x2A, 0x13, 0x1A,
            0x1C, 0x15, 0x16,
        ],
        3 => &[0x01, 0x02, 0x23, 0x08, 0x09, 0x26, 0x0B, 0x03],
        4..=7 | 9 | 11 => &[0x1F, 0x26],
        14 => &[0x11, 0x1F, 0x26, 0x1C],
        15 => &[0x15, 0x16, 0x1F, 0x26],
        _ => &[],
    }
}

/// Reads a Variable Byte Integer at the start of `b`: (value, bytes used).
fn var_int(b: &[u8]) -> Result<(usize, usize), String> {
    let mut value = 0usize;
    for (i, byte) in b.iter().take(4).enumerate() {
        value |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err("a variable byte integer that does not end within 4 bytes".into())
}

/// The property length at the start of `b`: (its value, the bytes it takes).
pub fn property_length(b: &[u8]) -> Option<(usize, usize)> {
    var_int(b).ok()
}

fn take<'a>(b: &mut &'a [u8], n: usize, what: &dyn fmt::Display) -> Result<&'a [u8], String> {
    if b.len() < n {
        return Err(format!("{what} runs past the end of its properties"));
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Ok(head)
}

/// A two-byte length and that many bytes.
fn sized<'a>(b: &mut &'a [u8], what: &dyn fmt::Display) -> Result<&'a [u8], String> {
    let len = take(b, 2, what)?;
    take(b, usize::from(u16::from_be_bytes([len[0], len[1]])), what)
}

fn utf8<'a>(b: &mut &'a [u8], what: &dyn fmt::Display) -> Result<&'a str, String> {
    let s = sized(b, what)?;
    let s = std::str::from_utf8(s).map_err(|_| format!("{what} is not UTF-8"))?;
    if s.contains('\0') {
        return Err(format!("{what} contains U+0000"));
    }
    Ok(s)
}

/// How errors name a property (`PUBLISH property Content Type`): formatted only into an error,
/// never for a good property (it was a third of an MQTT 5 message's cost).
struct PropertyName<'n> {
    packet: &'n str,
    property: &'static str,
}

impl fmt::Display for PropertyName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} property {}", self.packet, self.property)
    }
}

/// Checks the property section at the start of `b` for packet type `kind` (`name` in messages);
/// returns the bytes after it.
pub fn check_properties<'a>(kind: u8, name: &str, b: &'a [u8]) -> Result<&'a [u8], String> {
    let (len, used) = var_int(b).map_err(|e| format!("{name} property length: {e}"))?;
    let rest = &b[used..];
    if rest.len() < len {
        return Err(format!(
            "{name} with a property length of {len}, beyond the end of the packet"
        ));
    }
    let (mut props, after) = rest.split_at(len);
    // Known ids are below 0x30 (unknown ones are refused first): one bit each.
    let mut seen = 0u128;
    while let Some((&id, tail)) = props.split_first() {
        props = tail;
        let Some((k, pname)) = property(id) else {
            return Err(format!("{name} with an unknown property id {id:#04x}"));
        };
        if !allowed(kind).contains(&id) {
            return Err(format!("{name} may not carry the property {pname}"));
        }
        if !matches!(id, 0x26 | 0x0B) {
            let bit = 1u128.checked_shl(u32::from(id)).unwrap_or(0);
            if seen & bit != 0 {
                return Err(format!("{name} carries the property {pname} twice"));
            }
            seen |= bit;
        }
        let what = PropertyName {
            packet: name,
            property: pname,
        };
        let what = &what;
        match k {
            Kind::Byte => {
                let v = take(&mut props, 1, what)?[0];
                if v > 1 {
                    return Err(format!("{what} is {v} (must be 0 or 1)"));
                }
            }
            Kind::U16 => {
                let v = take(&mut props, 2, what)?;
                if matches!(id, 0x21 | 0x23) && v == [0, 0] {
                    return Err(format!("{what} is 0"));
                }
            }
            Kind::U32 => {
                let v = take(&mut props, 4, what)?;
                if id == 0x27 && v == [0, 0, 0, 0] {
                    return Err(format!("{what} is 0"));
                }
            }
            Kind::VarInt => {
                let (v, used) = var_int(props).map_err(|e| format!("{what}: {e}"))?;
                take(&mut props, used, what)?;
                if v == 0 {
                    return Err(format!("{what} is 0"));
                }
            }
            Kind::Utf8 => {
                utf8(&mut props, what)?;
            }
            Kind::Binary => {
                sized(&mut props, what)?;
            }
            Kind::Pair => {
                utf8(&mut props, what)?;
                utf8(&mut props, what)?;
            }
        }
    }
    Ok(after)
}

/// The MQTT 5 checks of one whole frame of packet type `kind` whose body (after the fixed header)
/// is `body`. The fixed header flags and packet ids are checked by the caller as for 3.1.1.
pub fn check_body(kind: u8, qos: u8, name: &str, body: &[u8]) -> Result<(), String> {
    match kind {
        // CONNACK: flags, reason code, properties.
        2 => {
            if body.len() < 3 {
                return Err(format!(
                    "{name} with a remaining length of {} (at least 3)",
                    body.len()
                ));
            }
            end(name, check_properties(kind, name, &body[2..])?)
        }
        3 => {
            let mut b = body;
            // The topic's UTF-8 is checked where it is read (`codec::read_publish`).
            sized(&mut b, &"PUBLISH topic")?;
            if qos > 0 {
                take(&mut b, 2, &"PUBLISH packet id")?;
            }
            check_properties(kind, name, b).map(drop)
        }
        // Acknowledgements: packet id, then an optional reason code and optional properties.
        4..=7 => match body.len() {
            2 | 3 => Ok(()),
            _ => end(name, check_properties(kind, name, &body[3..])?),
        },
        // SUBACK, UNSUBACK: packet id, properties, one reason code per filter. An UNSUBACK
        // without reason codes is taken (its codes only ever make a warning).
        9 | 11 => {
            if body.len() < 3 {
                return Err(format!(
                    "{name} with a remaining length of {} (at least 3)",
                    body.len()
                ));
            }
            let codes = check_properties(kind, name, &body[2..])?;
            if codes.is_empty() && kind == 9 {
                return Err(format!("{name} without a reason code"));
            }
            Ok(())
        }
        // DISCONNECT, AUTH: empty, a reason code, or a reason code and properties.
        14 | 15 => match body.len() {
            0 | 1 => Ok(()),
            _ => end(name, check_properties(kind, name, &body[1..])?),
        },
        _ => Ok(()),
    }
}

fn end(name: &str, rest: &[u8]) -> Result<(), String> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{name} with {} bytes after its properties",
            rest.len()
        ))
    }
}
