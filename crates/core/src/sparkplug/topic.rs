//! Sparkplug B topics: `spBv1.0/<group>/<type>/<edge node>[/<device>]`, and the host's
//! `spBv1.0/STATE/<host id>`.

/// The namespace every Sparkplug B topic starts with.
pub(crate) const NAMESPACE: &str = "spBv1.0";

/// The message types of a Sparkplug topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessageType {
    NBirth,
    NData,
    NDeath,
    NCmd,
    DBirth,
    DData,
    DDeath,
    DCmd,
}

impl MessageType {
    fn parse(text: &str) -> Option<MessageType> {
        Some(match text {
            "NBIRTH" => MessageType::NBirth,
            "NDATA" => MessageType::NData,
            "NDEATH" => MessageType::NDeath,
            "NCMD" => MessageType::NCmd,
            "DBIRTH" => MessageType::DBirth,
            "DDATA" => MessageType::DData,
            "DDEATH" => MessageType::DDeath,
            "DCMD" => MessageType::DCmd,
            _ => return None,
        })
    }

    /// Whether the type names a device (and its topic has a device id).
    fn is_device(self) -> bool {
        matches!(
            self,
            MessageType::DBirth | MessageType::DData | MessageType::DDeath | MessageType::DCmd
        )
    }
}

/// What a received topic is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SparkplugTopic<'a> {
    /// A node or device message.
    Edge {
        kind: MessageType,
        group: &'a str,
        node: &'a str,
        device: Option<&'a str>,
    },
    /// A host application's state.
    State { host_id: &'a str },
}

/// Why a topic is not a Sparkplug B topic the line reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TopicError {
    #[error("it does not start with '{NAMESPACE}/'")]
    Namespace,
    #[error("'{0}' is not a Sparkplug message type")]
    Kind(String),
    #[error("a {0} topic has {1} levels after the namespace; expected {2}")]
    Levels(&'static str, usize, usize),
    #[error("a group, edge node or device id is empty")]
    EmptyId,
}

impl<'a> SparkplugTopic<'a> {
    pub(crate) fn parse(topic: &'a str) -> Result<SparkplugTopic<'a>, TopicError> {
        let rest = topic
            .strip_prefix(NAMESPACE)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or(TopicError::Namespace)?;
        // At most five levels (a device topic has four, the fifth holds any rest): kept on the
        // stack, as this runs for every Sparkplug message, and cut by hand (`splitn` into the
        // same array cost 700 more instructions per message). A '/' is one byte of its own in
        // UTF-8, so the cuts fall between characters.
        let mut split = [""; 5];
        let mut count = 0;
        let mut start = 0;
        for (at, b) in rest.bytes().enumerate() {
            if b == b'/' && count < 4 {
                split[count] = &rest[start..at];
                count += 1;
                start = at + 1;
            }
        }
        split[count] = &rest[start..];
        let levels = &split[..=count];
        if levels.first() == Some(&"STATE") {
            return match levels {
                ["STATE", host_id] if !host_id.is_empty() => Ok(SparkplugTopic::State { host_id }),
                ["STATE", ""] => Err(TopicError::EmptyId),
                _ => Err(TopicError::Levels("STATE", levels.len(), 2)),
            };
        }
        let kind_text = levels.get(1).copied().unwrap_or_default();
        let kind =
            MessageType::parse(kind_text).ok_or_else(|| TopicError::Kind(kind_text.to_string()))?;
        let (want, what) = if kind.is_device() {
            (4, "device")
        } else {
            (3, "node")
        };
        if levels.len() != want {
            return Err(TopicError::Levels(what, levels.len(), want));
        }
        if levels.iter().any(|l| l.is_empty()) {
            return Err(TopicError::EmptyId);
        }
        Ok(SparkplugTopic::Edge {
            kind,
            group: levels[0],
            node: levels[2],
            device: levels.get(3).copied(),
        })
    }
}

/// The topic of a command to a node (`NCMD`) or to one of its devices (`DCMD`).
pub(crate) fn command_topic(group: &str, node: &str, device: Option<&str>) -> String {
    match device {
        Some(d) => format!("{NAMESPACE}/{group}/DCMD/{node}/{d}"),
        None => format!("{NAMESPACE}/{group}/NCMD/{node}"),
    }
}

/// The topic of an edge node's own message of type `kind` (`NBIRTH`, `DDATA`, ...): the node's,
/// or its device's when `device` is given.
pub(crate) fn edge_topic(
    group: &str,
    kind: MessageType,
    node: &str,
    device: Option<&str>,
) -> String {
    let name = match kind {
        MessageType::NBirth => "NBIRTH",
        MessageType::NData => "NDATA",
        MessageType::NDeath => "NDEATH",
        MessageType::NCmd => "NCMD",
        MessageType::DBirth => "DBIRTH",
        MessageType::DData => "DDATA",
        MessageType::DDeath => "DDEATH",
        MessageType::DCmd => "DCMD",
    };
    match device {
        Some(d) => format!("{NAMESPACE}/{group}/{name}/{node}/{d}"),
        None => format!("{NAMESPACE}/{group}/{name}/{node}"),
    }
}

/// The primary host's state topic.
pub(crate) fn state_topic(host_id: &str) -> String {
    format!("{NAMESPACE}/STATE/{host_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use MessageType::*;

    #[test]
    fn topics() {
        let edge = |kind, group, node, device| {
            Ok(SparkplugTopic::Edge {
                kind,
                group,
                node,
                device,
            })
        };
        let rows: Vec<(&str, Result<SparkplugTopic, TopicError>)> = vec![
            (
                "spBv1.0/plant/NBIRTH/press1",
                edge(NBirth, "plant", "press1", None),
            ),
            (
                "spBv1.0/plant/NDATA/press1",
                edge(NData, "plant", "press1", None),
            ),
            (
                "spBv1.0/plant/NDEATH/press1",
                edge(NDeath, "plant", "press1", None),
            ),
            (
                "spBv1.0/plant/NCMD/press1",
                edge(NCmd, "plant", "press1", None),
            ),
            (
                "spBv1.0/plant/DDATA/press1/plc",
                edge(DData, "plant", "press1", Some("plc")),
            ),
            (
                "spBv1.0/plant/DBIRTH/press1/plc",
                edge(DBirth, "plant", "press1", Some("plc")),
            ),
            (
                "spBv1.0/STATE/scada",
                Ok(SparkplugTopic::State { host_id: "scada" }),
            ),
            (
                "spBv1.0/plant/DDATA/press1",
                Err(TopicError::Levels("device", 3, 4)),
            ),
            (
                "spBv1.0/plant/NDATA/press1/x",
                Err(TopicError::Levels("node", 4, 3)),
            ),
            (
                "spBv1.0/plant/NDATA/press1/x/y/z",
                Err(TopicError::Levels("node", 5, 3)),
            ),
            (
                "spBv1.0/plant/XDATA/press1",
                Err(TopicError::Kind("XDATA".into())),
            ),
            ("spBv1.0//NDATA/press1", Err(TopicError::EmptyId)),
            ("spBv1.0/STATE/", Err(TopicError::EmptyId)),
            ("spBv1.0/STATE/a/b", Err(TopicError::Levels("STATE", 3, 2))),
            ("spAv1.0/plant/NDATA/press1", Err(TopicError::Namespace)),
            ("plant/NDATA", Err(TopicError::Namespace)),
        ];
        for (topic, want) in rows {
            assert_eq!(SparkplugTopic::parse(topic), want, "{topic}");
        }
    }

    #[test]
    fn outgoing_topics() {
        assert_eq!(command_topic("g", "n", None), "spBv1.0/g/NCMD/n");
        assert_eq!(command_topic("g", "n", Some("d")), "spBv1.0/g/DCMD/n/d");
        assert_eq!(state_topic("scada"), "spBv1.0/STATE/scada");
    }
}
