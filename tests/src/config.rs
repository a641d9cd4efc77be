//! The sim-host configuration file (TOML), built in code.

use std::fmt::Write as _;

/// A TOML basic string with everything escaped that must be.
pub fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML key: bare when it can be, quoted otherwise.
fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        toml_string(key)
    }
}

/// `[line]`: one communication line with its stations.
#[derive(Debug, Clone)]
pub struct LineConfig {
    host: String,
    port: u16,
    /// Name and TOML value text.
    params: Vec<(String, String)>,
    stations: Vec<StationConfig>,
}

impl LineConfig {
    /// A line to 127.0.0.1:`port`.
    pub fn new(port: u16) -> LineConfig {
        LineConfig {
            host: "127.0.0.1".into(),
            port,
            params: Vec::new(),
            stations: Vec::new(),
        }
    }

    /// The `host` value: one address or several separated by ',' or ';'.
    pub fn host(mut self, host: &str) -> Self {
        self.host = host.to_string();
        self
    }

    /// A protocol parameter with a string value.
    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.params.push((name.to_string(), toml_string(value)));
        self
    }

    /// A protocol parameter with a value written as raw TOML (an integer, say).
    pub fn param_raw(mut self, name: &str, toml_value: &str) -> Self {
        self.params.push((name.to_string(), toml_value.to_string()));
        self
    }

    pub fn station(mut self, station: StationConfig) -> Self {
        self.stations.push(station);
        self
    }

    /// The configuration file's text.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "[line]");
        let _ = writeln!(out, "host = {}", toml_string(&self.host));
        let _ = writeln!(out, "port = {}", self.port);
        if !self.params.is_empty() {
            let _ = writeln!(out, "\n[line.parameters]");
            for (name, value) in &self.params {
                let _ = writeln!(out, "{} = {value}", toml_key(name));
            }
        }
        for s in &self.stations {
            s.write_toml(&mut out);
        }
        out
    }
}

#[derive(Debug, Clone)]
struct TagConfig {
    name: String,
    address: String,
    value_type: String,
    default: Option<String>,
}

/// `[[station]]` with its parameters and tags.
#[derive(Debug, Clone)]
pub struct StationConfig {
    name: String,
    address: String,
    state: Option<String>,
    params: Vec<(String, String)>,
    tags: Vec<TagConfig>,
}

impl StationConfig {
    pub fn new(name: &str, address: &str) -> StationConfig {
        StationConfig {
            name: name.to_string(),
            address: address.to_string(),
            state: None,
            params: Vec::new(),
            tags: Vec::new(),
        }
    }

    /// `state = "on" | "off" | "simulate"`.
    pub fn state(mut self, state: &str) -> Self {
        self.state = Some(state.to_string());
        self
    }

    /// A station protocol parameter (`SWT`, `SWP`).
    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.params.push((name.to_string(), value.to_string()));
        self
    }

    pub fn tag(mut self, name: &str, address: &str, value_type: &str) -> Self {
        self.tags.push(TagConfig {
            name: name.to_string(),
            address: address.to_string(),
            value_type: value_type.to_string(),
            default: None,
        });
        self
    }

    pub fn tag_with_default(
        mut self,
        name: &str,
        address: &str,
        value_type: &str,
        default: &str,
    ) -> Self {
        self.tags.push(TagConfig {
            name: name.to_string(),
            address: address.to_string(),
            value_type: value_type.to_string(),
            default: Some(default.to_string()),
        });
        self
    }

    /// The three input tags every message fills: `topic` (IN_TOPIC, TxtI), `data` (IN_DATA,
    /// TxtI) and `id` (IN_ID, Ci).
    pub fn inputs(self) -> Self {
        self.tag("topic", "IN_TOPIC", "TxtI")
            .tag("data", "IN_DATA", "TxtI")
            .tag("id", "IN_ID", "Ci")
    }

    /// An ACK_ID tag `ack` (Co): the host confirms each message shown before the next one
    /// comes ([`SimHost::confirm`](crate::SimHost::confirm)).
    pub fn ack_id(self) -> Self {
        self.tag("ack", "ACK_ID", "Co")
    }

    fn write_toml(&self, out: &mut String) {
        let _ = writeln!(out, "\n[[station]]");
        let _ = writeln!(out, "name = {}", toml_string(&self.name));
        let _ = writeln!(out, "address = {}", toml_string(&self.address));
        if let Some(state) = &self.state {
            let _ = writeln!(out, "state = {}", toml_string(state));
        }
        if !self.params.is_empty() {
            let _ = writeln!(out, "[station.parameters]");
            for (name, value) in &self.params {
                let _ = writeln!(out, "{} = {}", toml_key(name), toml_string(value));
            }
        }
        for t in &self.tags {
            let _ = writeln!(out, "[[station.tag]]");
            let _ = writeln!(out, "name = {}", toml_string(&t.name));
            let _ = writeln!(out, "address = {}", toml_string(&t.address));
            let _ = writeln!(out, "type = {}", toml_string(&t.value_type));
            if let Some(d) = &t.default {
                let _ = writeln!(out, "default = {}", toml_string(d));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        assert_eq!(toml_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(toml_string("x\u{7f}\u{1}"), "\"x\\u007F\\u0001\"");
        assert_eq!(toml_string("status/b.*"), "\"status/b.*\"");
        assert_eq!(toml_key("topic_filter"), "topic_filter");
        assert_eq!(toml_key("Topic Filter"), "\"Topic Filter\"");
    }

    #[test]
    fn config_text() {
        let text = LineConfig::new(1234)
            .param("topic_filter", "#")
            .param_raw("subscribe_qos", "2")
            .station(
                StationConfig::new("battery", "status/battery")
                    .param("SWT", "status/battery/will")
                    .inputs()
                    .tag_with_default("out", "OUT_TOPIC", "TxtO", "cmd/battery"),
            )
            .to_toml();
        let expected = "[line]\nhost = \"127.0.0.1\"\nport = 1234\n\n[line.parameters]\n\
            topic_filter = \"#\"\nsubscribe_qos = 2\n\n[[station]]\nname = \"battery\"\n\
            address = \"status/battery\"\n[station.parameters]\nSWT = \"status/battery/will\"\n\
            [[station.tag]]\nname = \"topic\"\naddress = \"IN_TOPIC\"\ntype = \"TxtI\"\n\
            [[station.tag]]\nname = \"data\"\naddress = \"IN_DATA\"\ntype = \"TxtI\"\n\
            [[station.tag]]\nname = \"id\"\naddress = \"IN_ID\"\ntype = \"Ci\"\n\
            [[station.tag]]\nname = \"out\"\naddress = \"OUT_TOPIC\"\ntype = \"TxtO\"\n\
            default = \"cmd/battery\"\n";
        assert_eq!(text, expected);
    }
}
