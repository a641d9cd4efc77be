//! The TOML model of one line and its checked form.
//!
//! sim-host checks only the shape of the file, the D2000 type names and the uniqueness of names;
//! parameter names and values are the plugin's business and pass through as text.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use mqtt_line_abi::{value_type_from_name, value_type_name, MqlValueType};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

/// A scalar as written in TOML, kept until it is handed to the plugin as text.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

impl ParamValue {
    /// The text the plugin receives: booleans as YES/NO (the engineering tools' spelling),
    /// numbers in decimal.
    pub fn to_text(&self) -> String {
        match self {
            ParamValue::Text(s) => s.clone(),
            ParamValue::Integer(i) => i.to_string(),
            ParamValue::Float(f) => f.to_string(),
            ParamValue::Bool(true) => "YES".to_string(),
            ParamValue::Bool(false) => "NO".to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for ParamValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;

        impl Visitor<'_> for ScalarVisitor {
            type Value = ParamValue;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ParamValue, E> {
                Ok(ParamValue::Text(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<ParamValue, E> {
                Ok(ParamValue::Text(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ParamValue, E> {
                Ok(ParamValue::Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ParamValue, E> {
                i64::try_from(v)
                    .map(ParamValue::Integer)
                    .map_err(|_| E::custom(format!("integer {v} is too large")))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<ParamValue, E> {
                Err(E::custom(format!("integer {v} is out of range")))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<ParamValue, E> {
                Err(E::custom(format!("integer {v} is out of range")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ParamValue, E> {
                Ok(ParamValue::Float(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ParamValue, E> {
                Ok(ParamValue::Bool(v))
            }
        }

        d.deserialize_any(ScalarVisitor)
    }
}

/// A `parameters` table in file order: the plugin reads parameters in the order given (the last
/// password source wins), so they are passed on as written.
#[derive(Debug, Default)]
pub struct Parameters(Vec<(String, ParamValue)>);

impl<'de> Deserialize<'de> for Parameters {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TableVisitor;

        impl<'de> Visitor<'de> for TableVisitor {
            type Value = Parameters;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of parameters")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parameters, A::Error> {
                let mut params = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    params.push(entry);
                }
                Ok(Parameters(params))
            }
        }

        d.deserialize_map(TableVisitor)
    }
}

/// The whole file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub line: LineSection,
    #[serde(default)]
    pub station: Vec<StationSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineSection {
    /// The line's name in the plugin's messages; defaults to the file's stem.
    pub name: Option<String>,
    pub host: Option<ParamValue>,
    pub port: Option<ParamValue>,
    #[serde(default)]
    pub parameters: Parameters,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationSection {
    pub name: Spanned<String>,
    pub address: String,
    #[serde(default)]
    pub state: StationMode,
    #[serde(default)]
    pub parameters: Parameters,
    #[serde(default)]
    pub tag: Vec<TagSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagSection {
    pub name: Spanned<String>,
    pub address: String,
    #[serde(rename = "type")]
    pub value_type: Spanned<String>,
    pub default: Option<ParamValue>,
}

/// What a station is switched to before the line starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StationMode {
    #[default]
    On,
    Off,
    Simulate,
}

/// A line ready to hand to the plugin: ids assigned, parameters as text.
#[derive(Debug, Clone, PartialEq)]
pub struct LineSpec {
    pub name: String,
    /// `host`, `port` (when given) and the protocol parameters, in that order.
    pub params: Vec<(String, String)>,
    pub stations: Vec<StationSpec>,
    /// Tag id - 1 → (station index, tag index), so event ids resolve in O(1).
    tag_index: Vec<(usize, usize)>,
    station_names: HashMap<String, usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StationSpec {
    pub id: u64,
    pub name: String,
    pub address: String,
    pub mode: StationMode,
    pub params: Vec<(String, String)>,
    pub tags: Vec<TagSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TagSpec {
    pub id: u64,
    pub name: String,
    pub address: String,
    pub value_type: MqlValueType,
    pub default: Option<String>,
}

impl TagSpec {
    pub fn type_name(&self) -> &'static str {
        value_type_name(self.value_type).unwrap_or("?")
    }
}

impl FileConfig {
    /// Parses TOML text. The error gives the line, the column and the toml crate's message, but
    /// not the offending line itself: that line may hold a password.
    /// When the line is a `key = value` line, the key is named too (a number out of range names
    /// its parameter).
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|e| {
            let message = e.message().trim_end();
            match e.span() {
                Some(span) => format!("{}: {message}", Place::of(text, span.start)),
                None => message.to_string(),
            }
        })
    }

    /// Checks names and types and numbers stations 1..n and tags 1..m in file order. `text` is
    /// the file, for the line numbers of errors.
    pub fn into_spec(self, text: &str, default_name: &str) -> Result<LineSpec, String> {
        let at = |s: &Spanned<String>| Place::of(text, s.span().start);
        let mut params = Vec::new();
        if let Some(host) = &self.line.host {
            params.push(("host".to_string(), host.to_text()));
        }
        if let Some(port) = &self.line.port {
            params.push(("port".to_string(), port.to_text()));
        }
        params.extend(text_params(&self.line.parameters));

        let mut stations = Vec::with_capacity(self.station.len());
        let mut station_names = HashMap::new();
        let mut tag_index = Vec::new();
        for (si, st) in self.station.into_iter().enumerate() {
            check_name("station", st.name.get_ref())
                .map_err(|e| format!("{}: {e}", at(&st.name)))?;
            if station_names
                .insert(st.name.get_ref().clone(), si)
                .is_some()
            {
                return Err(format!(
                    "{}: station '{}' is defined more than once",
                    at(&st.name),
                    st.name.get_ref()
                ));
            }
            let mut tags: Vec<TagSpec> = Vec::with_capacity(st.tag.len());
            for (ti, tag) in st.tag.into_iter().enumerate() {
                let full = format!("{}.{}", st.name.get_ref(), tag.name.get_ref());
                check_name(
                    &format!("tag in station '{}'", st.name.get_ref()),
                    tag.name.get_ref(),
                )
                .map_err(|e| format!("{}: {e}", at(&tag.name)))?;
                if tags.iter().any(|t| t.name == *tag.name.get_ref()) {
                    return Err(format!(
                        "{}: tag '{full}' is defined more than once",
                        at(&tag.name)
                    ));
                }
                let value_type =
                    value_type_from_name(tag.value_type.get_ref()).ok_or_else(|| {
                        format!(
                            "{}: tag '{full}': unknown type '{}' (expected one of {})",
                            at(&tag.value_type),
                            tag.value_type.get_ref(),
                            type_names().join(", ")
                        )
                    })?;
                tag_index.push((si, ti));
                tags.push(TagSpec {
                    id: tag_index.len() as u64,
                    name: tag.name.into_inner(),
                    address: tag.address,
                    value_type,
                    default: tag.default.as_ref().map(ParamValue::to_text),
                });
            }
            stations.push(StationSpec {
                id: si as u64 + 1,
                name: st.name.into_inner(),
                address: st.address,
                mode: st.state,
                params: text_params(&st.parameters),
                tags,
            });
        }

        Ok(LineSpec {
            name: self.line.name.unwrap_or_else(|| default_name.to_string()),
            params,
            stations,
            tag_index,
            station_names,
        })
    }
}

impl LineSpec {
    /// Whether the configuration makes the line redundant (issue 21): `redundant_host` given
    /// and not empty, its name in any spelling the plugin reads (`Redundant Host`,
    /// `redundant-host`).
    pub fn is_redundant(&self) -> bool {
        self.params
            .iter()
            .any(|(k, v)| parameter_key(k) == "redundant_host" && !v.trim().is_empty())
    }

    /// Reads, parses and checks a configuration file.
    pub fn load(path: &Path) -> Result<LineSpec, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "line".to_string());
        FileConfig::parse(&text)
            .and_then(|f| f.into_spec(&text, &stem))
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn tag_count(&self) -> usize {
        self.tag_index.len()
    }

    pub fn station_by_name(&self, name: &str) -> Option<&StationSpec> {
        self.station_names.get(name).map(|&i| &self.stations[i])
    }

    pub fn station_by_id(&self, id: u64) -> Option<&StationSpec> {
        let i = usize::try_from(id).ok()?.checked_sub(1)?;
        self.stations.get(i)
    }

    /// The station and tag of a tag id.
    pub fn tag_by_id(&self, id: u64) -> Option<(&StationSpec, &TagSpec)> {
        let i = usize::try_from(id).ok()?.checked_sub(1)?;
        let &(s, t) = self.tag_index.get(i)?;
        Some((&self.stations[s], &self.stations[s].tags[t]))
    }
}

impl StationSpec {
    pub fn tag_by_name(&self, name: &str) -> Option<&TagSpec> {
        self.tags.iter().find(|t| t.name == name)
    }
}

fn text_params(params: &Parameters) -> Vec<(String, String)> {
    params
        .0
        .iter()
        .map(|(k, v)| (k.clone(), v.to_text()))
        .collect()
}

/// Where in the file an error is: line and column, and the key when the line is `key = value`.
/// Only the key is shown, never the value: the line may hold a password.
struct Place<'a> {
    line: usize,
    column: usize,
    key: Option<&'a str>,
}

impl<'a> Place<'a> {
    fn of(text: &'a str, offset: usize) -> Place<'a> {
        let offset = (0..=offset.min(text.len()))
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_text = text[line_start..].lines().next().unwrap_or("");
        let key = line_text
            .split_once('=')
            .map(|(k, _)| k.trim())
            .filter(|k| !k.is_empty() && !k.starts_with(['[', '#']));
        Place {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            key,
        }
    }
}

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)?;
        match self.key {
            Some(key) => write!(f, " ({key})"),
            None => Ok(()),
        }
    }
}

/// Names are addressed by stdin commands split at spaces, so they must be one non-empty word.
fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        return Err(format!(
            "{what}: name '{name}' must be non-empty and contain no spaces"
        ));
    }
    Ok(())
}

fn type_names() -> Vec<&'static str> {
    (1..=32).filter_map(value_type_name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r##"
[line]
host = "127.0.0.1"
port = 1883
[line.parameters]
topic_filter = "#"
subscribe_qos = "QoS_1"
clean_session = true
keep_alive = 30
ping_interval = 2.5

[[station]]
name = "battery"
address = "status/battery"
[station.parameters]
SWT = "status/battery/will"
[[station.tag]]
name = "topic"
address = "IN_TOPIC"
type = "TxtI"
[[station.tag]]
name = "cmd_topic"
address = "OUT_TOPIC"
type = "txto"
default = "cmd/battery"

[[station]]
name = "others"
address = ".*"
state = "simulate"
[[station.tag]]
name = "value"
address = "IN_DATA"
type = "Ai"
default = 1.5
"##;

    fn spec(text: &str) -> Result<LineSpec, String> {
        FileConfig::parse(text).and_then(|f| f.into_spec(text, "test"))
    }

    #[test]
    fn good_file_numbers_stations_and_tags_in_order() {
        let s = spec(GOOD).expect("valid configuration");
        assert_eq!(s.name, "test");
        assert_eq!(
            s.params,
            [
                ("host", "127.0.0.1"),
                ("port", "1883"),
                ("topic_filter", "#"),
                ("subscribe_qos", "QoS_1"),
                ("clean_session", "YES"),
                ("keep_alive", "30"),
                ("ping_interval", "2.5"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert_eq!(s.stations.len(), 2);
        assert_eq!(s.tag_count(), 3);
        let battery = &s.stations[0];
        assert_eq!((battery.id, battery.mode), (1, StationMode::On));
        assert_eq!(
            battery.params,
            [("SWT".to_string(), "status/battery/will".to_string())]
        );
        assert_eq!(battery.tags[1].id, 2);
        assert_eq!(battery.tags[1].value_type, mqtt_line_abi::MQL_TYPE_TXTO);
        assert_eq!(battery.tags[1].default.as_deref(), Some("cmd/battery"));
        let others = &s.stations[1];
        assert_eq!((others.id, others.mode), (2, StationMode::Simulate));
        assert_eq!(others.tags[0].default.as_deref(), Some("1.5"));

        let (st, tag) = s.tag_by_id(3).expect("tag 3 exists");
        assert_eq!((st.name.as_str(), tag.name.as_str()), ("others", "value"));
        assert!(s.tag_by_id(0).is_none() && s.tag_by_id(4).is_none());
        assert_eq!(s.station_by_id(2).map(|s| s.name.as_str()), Some("others"));
        assert_eq!(s.station_by_name("battery").map(|s| s.id), Some(1));
        assert!(battery.tag_by_name("cmd_topic").is_some());
    }

    #[test]
    fn bad_files_are_refused_with_a_message_naming_the_problem() {
        let cases: &[(&str, &str)] = &[
            ("[line]\nhots = \"x\"\n", "hots"),
            (
                "[line]\n[[station]]\nname = \"a\"\naddress = \"x\"\nadress = \"y\"\n",
                "adress",
            ),
            (
                "[line]\n[[station]]\nname = \"a\"\naddress = \"x\"\n[[station.tag]]\nname = \"t\"\naddress = \"IN_DATA\"\ntype = \"TxtI\"\ndefualt = 1\n",
                "defualt",
            ),
            ("[line]\n[lines]\n", "lines"),
            (
                "[line]\n[[station]]\nname = \"a\"\naddress = \"x\"\n[[station]]\nname = \"a\"\naddress = \"y\"\n",
                "station 'a' is defined more than once",
            ),
            (
                "[line]\n[[station]]\nname = \"a\"\naddress = \"x\"\n[[station.tag]]\nname = \"t\"\naddress = \"IN_DATA\"\ntype = \"TxtI\"\n[[station.tag]]\nname = \"t\"\naddress = \"IN_TOPIC\"\ntype = \"TxtI\"\n",
                "tag 'a.t' is defined more than once",
            ),
            (
                "[line]\n[[station]]\nname = \"a\"\naddress = \"x\"\n[[station.tag]]\nname = \"t\"\naddress = \"IN_DATA\"\ntype = \"Float\"\n",
                "unknown type 'Float'",
            ),
            (
                "[line]\n[[station]]\nname = \"a\"\naddress = \"x\"\nstate = \"maybe\"\n",
                "maybe",
            ),
            ("[line]\n[line.parameters]\nx = [1, 2]\n", "string, number or boolean"),
            ("[line\n", "line"),
            ("[[station]]\nname = \"a\"\naddress = \"x\"\n", "line"),
            (
                "[line]\n[[station]]\nname = \"my station\"\naddress = \"x\"\n",
                "no spaces",
            ),
        ];
        for (text, needle) in cases {
            let err = spec(text).expect_err(text);
            assert!(err.contains(needle), "{text:?}: {err:?} lacks {needle:?}");
        }
    }

    /// The plugin reads parameters in order (the last password source wins), so they are
    /// passed on in file order, not sorted.
    #[test]
    fn parameters_keep_their_file_order() {
        let text = "[line]\n[line.parameters]\npassword_file = \"/run/pw\"\npassword = \"x\"\n\
                    client_id = \"c\"\n[[station]]\nname = \"s\"\naddress = \"a\"\n\
                    [station.parameters]\nSWT = \"w\"\nSWP = \"p\"\n";
        let s = spec(text).expect("valid");
        let keys: Vec<&str> = s.params.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["password_file", "password", "client_id"]);
        let keys: Vec<&str> = s.stations[0]
            .params
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(keys, ["SWT", "SWP"]);
    }

    /// sim-host's own errors give the line (and the key, for a value); never the value itself.
    #[test]
    fn file_errors_give_the_line_and_the_key() {
        let station = "[[station]]\nname = \"a\"\naddress = \"x\"\n";
        let tag = "[[station.tag]]\nname = \"t\"\naddress = \"IN_DATA\"\ntype = \"TxtI\"\n";
        let cases: Vec<(String, &str)> = vec![
            (
                format!("[line]\n{station}{station}"),
                "line 6, column 8 (name): station 'a' is defined more than once",
            ),
            (
                format!("[line]\n{station}{tag}{tag}"),
                "line 10, column 8 (name): tag 'a.t' is defined more than once",
            ),
            (
                format!("[line]\n{station}{tag}").replace("TxtI", "Float"),
                "line 8, column 8 (type): tag 'a.t': unknown type 'Float'",
            ),
            (
                "[line]\n[[station]]\nname = \"my st\"\naddress = \"x\"\n".into(),
                "line 3, column 8 (name): station: name 'my st'",
            ),
            ("[line]\n[[station]]\nname = \"a\"\n".into(), "line 2"),
            ("[line]\nhots = \"x\"\n".into(), "line 2, column 1 (hots)"),
            (
                "[line]\n[line.parameters]\nkeep_alive = 99999999999999999999\n".into(),
                "line 3, column 14 (keep_alive): integer 99999999999999999999 is out of range",
            ),
            (
                "[line]\n[line.parameters]\nping_interval = 1e400\n".into(),
                "(ping_interval)",
            ),
            (
                "[line]\n[line.parameters]\npassword = 12x\n".into(),
                "line 3",
            ),
        ];
        for (text, needle) in &cases {
            let err = spec(text).expect_err(text);
            assert!(err.contains(needle), "{text:?}: {err:?} lacks {needle:?}");
            assert!(!err.contains("12x"), "the value is not shown: {err}");
        }
    }

    #[test]
    fn scalar_values_become_plugin_text() {
        let cases = [
            (ParamValue::Text("QoS_1".into()), "QoS_1"),
            (ParamValue::Text(String::new()), ""),
            (ParamValue::Integer(1883), "1883"),
            (ParamValue::Integer(-5), "-5"),
            (ParamValue::Float(0.25), "0.25"),
            (ParamValue::Float(3.0), "3"),
            (ParamValue::Bool(true), "YES"),
            (ParamValue::Bool(false), "NO"),
        ];
        for (value, text) in cases {
            assert_eq!(value.to_text(), text, "{value:?}");
        }
    }
}

/// A parameter name as the plugin compares it: lower case, each run of characters that are not
/// letters or digits one `_`, none at either end (docs/parameters.md).
fn parameter_key(name: &str) -> String {
    let mut key = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_alphanumeric() {
            key.extend(c.to_lowercase());
        } else if !key.is_empty() && !key.ends_with('_') {
            key.push('_');
        }
    }
    if key.ends_with('_') {
        key.pop();
    }
    key
}

#[cfg(test)]
mod parameter_key_tests {
    use super::parameter_key;

    #[test]
    fn names_read_in_any_spelling() {
        for name in [
            "redundant_host",
            "Redundant Host",
            "REDUNDANT-HOST",
            " redundant..host_",
        ] {
            assert_eq!(parameter_key(name), "redundant_host", "{name:?}");
        }
        assert_eq!(parameter_key("redundant_hosts"), "redundant_hosts");
    }
}
