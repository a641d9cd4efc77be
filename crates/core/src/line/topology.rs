//! Configuring a line and starting it: the rules for stations and tags as they are added
//! (unique ids and addresses, address syntax, tag type against address, defaults), and what
//! `start` and `check` produce from them: the routing table, the will topic index, each station's
//! JSON extraction tree and the warnings for configurations that cannot work as meant.

use std::collections::HashMap;
use std::sync::Arc;

use super::writes::check_publish_topic;
use super::{Line, Station, Tag};
use crate::ack_gate::AckGate;
use crate::config::PayloadType;
use crate::config::Warnings;
use crate::error::{object, ConfigError};
use crate::event::LogLevel;
use crate::ids::{StationId, StationIndex, TagId, TagIndex};
use crate::json_path::JsonPath;
use crate::json_plan::JsonPlan;
use crate::params::MQTT_STRING_MAX;
use crate::payload::PayloadSettings;
use crate::routing::{check_address, RouteEntry, Router};
use crate::station::{StationCommand, StationParams};
use crate::tag::TagAddress;
use crate::text::quote;
use crate::value::{Value, ValueType};

impl Line {
    /// The filters of the stations that subscribe their address and are on.
    pub(super) fn station_filters(&self) -> std::collections::BTreeSet<String> {
        self.stations
            .iter()
            .filter(|s| s.command == StationCommand::On)
            .filter_map(|s| s.subscription.clone())
            .chain(self.edge_filters())
            .collect()
    }

    /// What a connection subscribes to: the stations' filters, and the line's `topic_filter`
    /// when it was given or no station subscribes its address (then its default `#`).
    pub(super) fn subscriptions_into(&self, session: &mut crate::session::SessionConfig) {
        let any = self.stations.iter().any(|s| s.subscription.is_some());
        if any && !self.config.topic_filter_given {
            session.topic_filter.clear();
        }
        session.station_filters = self.station_filters();
    }

    /// Refuses configuring `what` ("stations", "tags") once the line is started.
    fn refuse_after_start(&self, what: &str) -> Result<(), ConfigError> {
        if self.started {
            return Err(ConfigError::State(format!(
                "line '{}' is started: {what} can only be added before line_start",
                self.name
            )));
        }
        Ok(())
    }

    pub fn add_station<'a>(
        &mut self,
        id: StationId,
        name: &str,
        address: &str,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), ConfigError> {
        self.refuse_after_start("stations")?;
        let object = object("station", name);
        if self.station_ids.contains_key(&id) {
            return Err(ConfigError::DuplicateId {
                object,
                what: "station",
                id: id.0,
            });
        }
        let params = StationParams::from_params(&object, params)?;
        let payload = PayloadSettings::resolve(&object, &self.config, &params)?;
        check_address_text(&object, address)?;
        self.check_edge_station(name, address)?;
        let checked = check_address(name, address)?;
        for warning in checked.warnings {
            self.log(LogLevel::Warn, warning);
        }
        if let Some(&other) = self.addresses.get(address) {
            return Err(ConfigError::DuplicateAddress {
                object,
                address: address.to_string(),
                other: self.stations[other].name.clone(),
            });
        }
        if params.subscribe_station_address
            && matches!(
                self.config.payload_type(),
                PayloadType::SparkplugB | PayloadType::SparkplugEdge
            )
        {
            return Err(ConfigError::InvalidValue {
                object,
                param: "subscribe_station_address".into(),
                value: "YES".into(),
                reason: "a Sparkplug line subscribes to the Sparkplug namespace itself".into(),
            });
        }
        let subscription = params
            .subscribe_station_address
            .then(|| crate::station_filter::covering_filter(address));
        if let Some(filter) = &subscription {
            self.log(
                LogLevel::Debug,
                format!(
                    "station '{name}' subscribes to {} for its address {}",
                    quote(filter),
                    quote(address)
                ),
            );
        }
        let index = StationIndex(self.stations.len());
        self.addresses.insert(address.to_string(), index);
        self.station_ids.insert(id, index);
        self.stations.push(Station {
            id,
            name: name.to_string(),
            address: address.to_string(),
            pattern: checked.pattern,
            params,
            payload,
            json_tags: false,
            extract: Arc::default(),
            element_hints: Default::default(),
            csv_tags: false,
            in_tags: false,
            property_tags: false,
            device_lost: false,
            command: StationCommand::On,
            state: None,
            tags: Vec::new(),
            out_topic: None,
            subscription,
            user_properties: Vec::new(),
            gated: false,
            gate: AckGate::default(),
            counters: Default::default(),
            staleness: Default::default(),
        });
        Ok(())
    }

    pub fn add_tag(
        &mut self,
        station_id: StationId,
        id: TagId,
        name: &str,
        address: &str,
        ty: ValueType,
        default: Option<Value>,
    ) -> Result<(), ConfigError> {
        self.refuse_after_start("tags")?;
        let &station = self
            .station_ids
            .get(&station_id)
            .ok_or(ConfigError::UnknownStation(station_id))?;
        // The tag's name in errors is made only for one.
        if self.tag_ids.contains_key(&id) {
            return Err(ConfigError::DuplicateId {
                object: self.new_tag_object(station, name),
                what: "tag",
                id: id.0,
            });
        }
        let mut parsed = TagAddress::parse_for(&|| self.new_tag_object(station, name), address)?;
        if let TagAddress::Json(path) = &mut parsed {
            *path = self
                .json_paths
                .entry(path.to_string())
                .or_insert_with(|| path.clone())
                .clone();
        }
        parsed
            .check_type(ty)
            .map_err(|reason| ConfigError::TypeMismatch {
                object: self.new_tag_object(station, name),
                address: address.to_string(),
                value_type: ty.name().to_string(),
                reason,
            })?;
        if let Some(v) = default {
            let text = v.to_text();
            let v = v
                .convert(ty)
                .map_err(|reason| ConfigError::InvalidDefault {
                    object: self.new_tag_object(station, name),
                    value: text,
                    reason,
                })?;
            if parsed == TagAddress::OutTopic {
                let topic = v.to_text();
                check_publish_topic(&topic).map_err(|reason| ConfigError::InvalidDefault {
                    object: self.new_tag_object(station, name),
                    value: topic.clone(),
                    reason: reason.to_string(),
                })?;
                self.stations[station].out_topic = Some(topic);
            }
            if let TagAddress::OutProperty(name) = &parsed {
                self.stations[station].set_user_property(name, v.to_text());
            }
        }
        match parsed {
            TagAddress::AckId if !self.stations[station].gated => {
                self.stations[station].gated = true;
                self.gated_stations.push(station);
            }
            TagAddress::AckId => {}
            TagAddress::Json(_) => self.stations[station].json_tags = true,
            TagAddress::Csv(_) => self.stations[station].csv_tags = true,
            TagAddress::InProperty(_)
            | TagAddress::InContentType
            | TagAddress::InResponseTopic
            | TagAddress::InCorrelationData => {
                let st = &mut self.stations[station];
                st.in_tags = true;
                st.property_tags = true;
            }
            ref a if a.is_message_field() => self.stations[station].in_tags = true,
            _ => {}
        }
        let index = TagIndex(self.tags.len());
        self.tag_ids.insert(id, index);
        self.stations[station].tags.push(index);
        self.tags.push(Tag {
            id,
            station,
            name: name.to_string(),
            address: parsed,
            ty,
            valid: false,
        });
        Ok(())
    }

    /// How errors name tag `name` of station `station` while it is being added.
    fn new_tag_object(&self, station: StationIndex, name: &str) -> String {
        object("tag", &format!("{}.{name}", self.stations[station].name))
    }

    /// Ends configuration: builds the routing table and reports every station's first state.
    /// Returns the warnings of [`Line::check`] for the caller to log.
    /// `wall_ns` is the time of those first states.
    pub fn start(&mut self, wall_ns: i64) -> Result<Warnings, ConfigError> {
        if self.started {
            return Err(ConfigError::State(format!(
                "line '{}' is already started",
                self.name
            )));
        }
        self.router = self.build_router()?;
        self.build_edge(wall_ns)?;
        let warnings = self.start_warnings();
        self.build_extract_trees();
        // Configuration is complete: give back what the growing vectors reserved.
        self.tags.shrink_to_fit();
        self.stations.shrink_to_fit();
        for st in &mut self.stations {
            st.tags.shrink_to_fit();
        }
        self.wills.clear();
        for (i, st) in self.stations.iter().enumerate() {
            if !st.params.will_topic.is_empty() {
                self.wills
                    .entry(st.params.will_topic.clone())
                    .or_default()
                    .push(StationIndex(i));
            }
        }
        self.started = true;
        self.build_sparkplug(wall_ns);
        for i in self.station_indexes() {
            self.refresh_station(i, "line started", wall_ns);
        }
        Ok(warnings)
    }

    /// What [`Line::start`] checks, without starting: the routing table must build, and
    /// configurations that are valid but cannot work as meant are returned as warnings.
    pub fn check(&self) -> Result<Warnings, ConfigError> {
        self.build_router()?;
        self.edge_of_configuration(0)?;
        Ok(self.start_warnings())
    }

    fn build_router(&self) -> Result<Router, ConfigError> {
        let entries: Vec<RouteEntry> = self
            .stations
            .iter()
            .enumerate()
            .map(|(i, s)| RouteEntry {
                station: i,
                name: &s.name,
                address: &s.address,
                pattern: s.pattern,
            })
            .collect();
        Router::build(&entries)
    }

    /// The rules for configurations that are accepted but cannot work as meant, in one place so
    /// that every host gets them at start and `check` gets them without starting.
    fn start_warnings(&self) -> Warnings {
        let mut warnings = Vec::new();
        if self.stations.is_empty() {
            // The plugin's log prefixes every message with the line's name.
            warnings.push("no stations are configured, so no message reaches the host".into());
        }
        if self.config.is_edge_node() {
            warnings.extend(self.edge_warnings());
        } else {
            warnings.extend(self.sparkplug_warnings());
        }
        let catch_all = self.stations.iter().find(|s| s.address == "#");
        for st in &self.stations {
            let station = object("station", &st.name);
            let has =
                |wanted: &TagAddress| st.tags.iter().any(|&t| self.tags[t].address == *wanted);
            if has(&TagAddress::OutValue) && !has(&TagAddress::OutTopic) {
                warnings.push(format!(
                    "{station} has an OUT_VALUE tag but no OUT_TOPIC tag, so it has no topic to \
                     publish to and every write of OUT_VALUE fails"
                ));
            }
            let receives = st.in_tags || st.json_tags || st.csv_tags || st.gated;
            if let Some(all) = catch_all.filter(|all| receives && all.id != st.id) {
                warnings.push(format!(
                    "{station} never receives a message: {} has address '#', which takes every \
                     message",
                    object("station", &all.name)
                ));
            }
            let unread = match st.payload.payload_type {
                PayloadType::Json if st.csv_tags => Some(("CSV=", "JSON")),
                PayloadType::Csv if st.json_tags => Some(("JA=", "CSV")),
                PayloadType::Text if st.csv_tags => Some(("CSV=", "Text only")),
                _ => None,
            };
            if let Some((tags, kind)) = unread {
                warnings.push(format!(
                    "{station} has {tags} tags but its payload type is {kind}, so they never get \
                     a value"
                ));
            }
            if st.params.will_topic.contains(['+', '#']) {
                warnings.push(format!(
                    "{station}: Station Will Topic {} contains an MQTT wildcard ('+' or '#'), but \
                     it is compared with each topic as it is, so it never matches",
                    quote(&st.params.will_topic)
                ));
            }
        }
        warnings
    }

    /// Changes line parameters. The caller reconnects when this succeeds.
    pub fn reconfigure<'a>(
        &mut self,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Warnings, ConfigError> {
        let object = format!("line '{}'", self.name);
        let (config, warnings) = self.config.with_changes(&object, params)?;
        if self.started && config.is_edge_node() != self.config.is_edge_node() {
            // The edge node (its metrics, aliases, store) is built from the stations at start.
            return Err(ConfigError::InvalidValue {
                object,
                param: "payload_type".into(),
                value: format!("{:?}", config.payload_type()),
                reason: "a started line cannot become or stop being a Sparkplug edge node;                          configure the line again"
                    .into(),
            });
        }
        // Every station must accept the new line settings before any is changed.
        let settings = self
            .stations
            .iter()
            .map(|st| {
                PayloadSettings::resolve(
                    &crate::error::object("station", &st.name),
                    &config,
                    &st.params,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.config = config;
        self.sync_redundancy();
        for (st, payload) in self.stations.iter_mut().zip(settings) {
            st.payload = payload;
        }
        self.build_extract_trees();
        if self.started {
            self.build_sparkplug(0);
        }
        Ok(warnings)
    }

    /// What each station reads from a JSON payload (json_plan.rs): its JA= addresses in tag
    /// order, its time field, its selected items' time and quality fields.
    fn build_extract_trees(&mut self) {
        let mut shared: HashMap<Vec<String>, Arc<JsonPlan>> = HashMap::new();
        for i in self.station_indexes() {
            let st = &self.stations[i];
            let paths: Vec<&JsonPath> = st
                .tags
                .iter()
                .filter_map(|&t| match &self.tags[t].address {
                    TagAddress::Json(p) => Some(&**p),
                    _ => None,
                })
                .collect();
            let plan = shared
                .entry(JsonPlan::key(&paths, &st.payload))
                .or_insert_with(|| Arc::new(JsonPlan::new(&paths, &st.payload)))
                .clone();
            self.stations[i].extract = plan;
        }
    }
}

/// A station address is compared with topics, which hold no NUL and at most
/// [`MQTT_STRING_MAX`] bytes: an address outside that never matches.
fn check_address_text(object: &str, address: &str) -> Result<(), ConfigError> {
    let reason = if address.contains('\0') {
        "it contains a NUL character (U+0000), which no topic holds".to_string()
    } else if address.len() > MQTT_STRING_MAX {
        format!(
            "it is {} bytes long; addresses are at most {MQTT_STRING_MAX} bytes, the most an \
             MQTT topic can hold",
            address.len()
        )
    } else {
        return Ok(());
    };
    Err(ConfigError::InvalidAddress {
        object: object.to_string(),
        address: address.to_string(),
        reason,
    })
}
