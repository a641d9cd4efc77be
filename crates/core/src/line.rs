//! One communication line: its stations and tags, the routing table and the MQTT session, driven
//! by the shell with packets, time and host requests, and answering with packets and events.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::ack_gate::{AckGate, Held, HeldLimit, Offered, Refusal};
use crate::config::{LineConfig, Warnings};
use crate::error::{object, ConfigError};
use crate::event::{
    Event, LineEvent, FLAG_DUPLICATE, FLAG_RETAINED, FLAG_TIME_FROM_PAYLOAD, FLAG_VALID,
};
use crate::json_extract::{Found, PathTree};
use crate::json_path::JsonPath;
use crate::json_value;
use crate::params::{Secret, MQTT_STRING_MAX};
use crate::payload::{self, PayloadSettings, Stamp};
use crate::routing::{check_address, RouteEntry, Router};
use crate::session::{Packet, ProtocolError, Publish, QoS, Session, SessionEvent};
use crate::station::{StationCommand, StationParams, StationState};
use crate::tag::TagAddress;
use crate::text::quote;
use crate::value::{Value, ValueType};

struct Station {
    id: u64,
    name: String,
    address: String,
    params: StationParams,
    payload: PayloadSettings,
    /// The station has JA= tags, so JSON payloads are parsed for it.
    json_tags: bool,
    /// Its JA= addresses in tag order, then the time field: what is read from a payload.
    /// Stations with the same addresses share one.
    extract: Arc<PathTree>,
    /// The station has IN_TOPIC, IN_DATA or IN_ID tags.
    in_tags: bool,
    /// Its will message arrived: hard error until data comes again.
    device_lost: bool,
    command: StationCommand,
    state: Option<StationState>,
    tags: Vec<usize>,
    out_topic: Option<String>,
    /// The station has an ACK_ID tag: the host confirms each message before the next is shown.
    gated: bool,
    gate: AckGate,
}

struct Tag {
    id: u64,
    station: usize,
    name: String,
    address: TagAddress,
    ty: ValueType,
    /// The tag's last value was valid: it must be invalidated when communication fails.
    valid: bool,
}

/// A write waiting for the broker, by session token.
struct PendingWrite {
    request: u64,
    station: u64,
    tag: u64,
}

/// The line core. All methods are cheap and never block.
pub struct Line {
    name: String,
    config: LineConfig,
    stations: Vec<Station>,
    tags: Vec<Tag>,
    station_ids: HashMap<u64, usize>,
    tag_ids: HashMap<u64, usize>,
    addresses: HashMap<String, usize>,
    router: Router,
    /// Station Will Topics, checked before routing: a device's will often has another topic.
    wills: HashMap<String, Vec<usize>>,
    session: Session,
    events: VecDeque<Event>,
    started: bool,
    host: Option<String>,
    writes: HashMap<u64, PendingWrite>,
    next_token: u64,
    unrouted: u64,
    /// Values read from the last JSON payload, kept to reuse the allocation.
    extracted: Vec<Option<Found>>,
    /// One copy of each distinct JA= address, shared by the tags that use it.
    json_paths: HashMap<String, Arc<JsonPath>>,
}

impl Line {
    pub fn new(name: &str, config: LineConfig, now: Instant) -> Line {
        Line {
            name: name.to_string(),
            config,
            stations: Vec::new(),
            tags: Vec::new(),
            station_ids: HashMap::new(),
            tag_ids: HashMap::new(),
            addresses: HashMap::new(),
            wills: HashMap::new(),
            router: Router::default(),
            session: Session::new(now),
            events: VecDeque::new(),
            started: false,
            host: None,
            writes: HashMap::new(),
            next_token: 1,
            unrouted: 0,
            extracted: Vec::new(),
            json_paths: HashMap::new(),
        }
    }

    pub fn config(&self) -> &LineConfig {
        &self.config
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Messages that matched no station so far.
    pub fn unrouted(&self) -> u64 {
        self.unrouted
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
        id: u64,
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
                id,
            });
        }
        let params = StationParams::from_params(&object, params)?;
        let payload = PayloadSettings::resolve(&self.config, &params);
        check_address_text(&object, address)?;
        for warning in check_address(name, address)? {
            tracing::warn!("{warning}");
        }
        if let Some(&other) = self.addresses.get(address) {
            return Err(ConfigError::DuplicateAddress {
                object,
                address: address.to_string(),
                other: self.stations[other].name.clone(),
            });
        }
        self.addresses
            .insert(address.to_string(), self.stations.len());
        self.station_ids.insert(id, self.stations.len());
        self.stations.push(Station {
            id,
            name: name.to_string(),
            address: address.to_string(),
            params,
            payload,
            json_tags: false,
            extract: Arc::default(),
            in_tags: false,
            device_lost: false,
            command: StationCommand::On,
            state: None,
            tags: Vec::new(),
            out_topic: None,
            gated: false,
            gate: AckGate::default(),
        });
        Ok(())
    }

    pub fn add_tag(
        &mut self,
        station_id: u64,
        id: u64,
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
        let object = object("tag", &format!("{}.{}", self.stations[station].name, name));
        if self.tag_ids.contains_key(&id) {
            return Err(ConfigError::DuplicateId {
                object,
                what: "tag",
                id,
            });
        }
        let mut parsed = TagAddress::parse(&object, address)?;
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
                object: object.clone(),
                address: address.to_string(),
                value_type: ty.name().to_string(),
                reason,
            })?;
        if let Some(v) = default {
            let text = v.to_text();
            let v = v
                .convert(ty)
                .map_err(|reason| ConfigError::InvalidDefault {
                    object: object.clone(),
                    value: text,
                    reason,
                })?;
            if parsed == TagAddress::OutTopic {
                let topic = v.to_text();
                check_publish_topic(&topic).map_err(|reason| ConfigError::InvalidDefault {
                    object: object.clone(),
                    value: topic.clone(),
                    reason,
                })?;
                self.stations[station].out_topic = Some(topic);
            }
        }
        match parsed {
            TagAddress::AckId => self.stations[station].gated = true,
            TagAddress::Json(_) => self.stations[station].json_tags = true,
            TagAddress::InTopic | TagAddress::InData | TagAddress::InId => {
                self.stations[station].in_tags = true
            }
            _ => {}
        }
        self.tag_ids.insert(id, self.tags.len());
        self.stations[station].tags.push(self.tags.len());
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

    /// Ends configuration: builds the routing table and reports every station's first state.
    /// Returns the warnings of [`Line::check`] for the caller to log.
    pub fn start(&mut self) -> Result<Warnings, ConfigError> {
        if self.started {
            return Err(ConfigError::State(format!(
                "line '{}' is already started",
                self.name
            )));
        }
        self.router = self.build_router()?;
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
                    .push(i);
            }
        }
        self.started = true;
        for i in 0..self.stations.len() {
            self.refresh_station(i, "line started");
        }
        Ok(warnings)
    }

    /// What [`Line::start`] checks, without starting: the routing table must build, and
    /// configurations that are valid but cannot work as meant are returned as warnings.
    pub fn check(&self) -> Result<Warnings, ConfigError> {
        self.build_router()?;
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
            let receives = st.in_tags || st.json_tags || st.gated;
            if let Some(all) = catch_all.filter(|all| receives && all.id != st.id) {
                warnings.push(format!(
                    "{station} never receives a message: {} has address '#', which takes every \
                     message",
                    object("station", &all.name)
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

    /// Whether the line should hold a connection: some station is on.
    pub fn wants_connection(&self) -> bool {
        self.stations
            .iter()
            .any(|s| s.command == StationCommand::On)
    }

    pub fn is_ready(&self) -> bool {
        self.session.is_ready()
    }

    /// A transport to `host` is open: the session starts with CONNECT.
    pub fn transport_open(&mut self, host: &str, password: &Secret, now: Instant) {
        self.host = Some(host.to_string());
        self.session.connect(&self.config, password, now);
    }

    /// The transport closed, or an attempt to open one failed.
    pub fn transport_closed(&mut self, reason: &str) {
        let was_ready = self.session.is_ready();
        for token in self.session.disconnected() {
            self.fail_write(
                token,
                "the connection to the broker was lost before the broker acknowledged the message",
            );
        }
        self.host = None;
        self.events.push_back(Event::Line(LineEvent::Disconnected {
            reason: reason.to_string(),
        }));
        if was_ready {
            for i in 0..self.stations.len() {
                self.refresh_station(i, reason);
            }
        }
    }

    /// Changes line parameters. The caller reconnects when this succeeds.
    pub fn reconfigure<'a>(
        &mut self,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Warnings, ConfigError> {
        let object = format!("line '{}'", self.name);
        let (config, warnings) = self.config.with_changes(&object, params)?;
        self.config = config;
        for st in &mut self.stations {
            st.payload = PayloadSettings::resolve(&self.config, &st.params);
        }
        self.build_extract_trees();
        Ok(warnings)
    }

    /// What each station reads from a JSON payload: its JA= addresses in tag order, then its
    /// time field.
    fn build_extract_trees(&mut self) {
        let mut shared: HashMap<Vec<String>, Arc<PathTree>> = HashMap::new();
        for i in 0..self.stations.len() {
            let st = &self.stations[i];
            let paths: Vec<&JsonPath> = st
                .tags
                .iter()
                .filter_map(|&t| match &self.tags[t].address {
                    TagAddress::Json(p) => Some(&**p),
                    _ => None,
                })
                .chain(st.payload.time_field.as_ref())
                .collect();
            let key: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
            let tree = shared
                .entry(key)
                .or_insert_with(|| Arc::new(PathTree::new(paths)))
                .clone();
            self.stations[i].extract = tree;
        }
    }

    pub fn station_command(
        &mut self,
        station_id: u64,
        cmd: StationCommand,
    ) -> Result<(), ConfigError> {
        let &i = self
            .station_ids
            .get(&station_id)
            .ok_or(ConfigError::UnknownStation(station_id))?;
        self.stations[i].command = cmd;
        let reason = match cmd {
            StationCommand::On => "switched on",
            StationCommand::Off => "switched off",
            StationCommand::Simulate => "switched to simulation",
        };
        if self.started {
            self.refresh_station(i, reason);
        }
        Ok(())
    }

    /// The state a station should show now, reported when it changed.
    fn refresh_station(&mut self, i: usize, reason: &str) {
        let connected = self.session.is_ready();
        let s = &self.stations[i];
        let state = match s.command {
            StationCommand::Off => StationState::Off,
            StationCommand::Simulate => StationState::Simulation,
            StationCommand::On if !connected => StationState::CommError,
            StationCommand::On if s.device_lost => StationState::HardError,
            StationCommand::On => StationState::Ok,
        };
        self.set_station_state(i, state, reason);
    }

    fn set_station_state(&mut self, i: usize, state: StationState, reason: &str) {
        if self.stations[i].state == Some(state) {
            return;
        }
        self.stations[i].state = Some(state);
        self.events.push_back(Event::StationState {
            station: self.stations[i].id,
            state,
            reason: reason.to_string(),
        });
        if matches!(state, StationState::CommError | StationState::HardError) {
            self.invalidate_inputs(i);
        }
    }

    fn invalidate_inputs(&mut self, station: usize) {
        let station_id = self.stations[station].id;
        for &t in &self.stations[station].tags {
            let tag = &mut self.tags[t];
            if tag.valid && tag.address.is_input() {
                tag.valid = false;
                self.events.push_back(Event::TagValue {
                    station: station_id,
                    tag: tag.id,
                    value: None,
                    time_ns: crate::event::now_ns(),
                    flags: 0,
                });
            }
        }
    }

    pub fn handle_packet(
        &mut self,
        packet: Packet,
        now: Instant,
        wall_ns: i64,
    ) -> Result<(), ProtocolError> {
        match self.session.handle(packet, now)? {
            None => {}
            Some(SessionEvent::Ready { .. }) => {
                let host = self.host.clone().unwrap_or_default();
                self.events
                    .push_back(Event::Line(LineEvent::Connected { host }));
                for i in 0..self.stations.len() {
                    self.refresh_station(i, "connected to the broker");
                }
            }
            Some(SessionEvent::Message(p)) => self.deliver(p, now, wall_ns),
            Some(SessionEvent::Published(token)) => self.complete_write(token),
        }
        Ok(())
    }

    /// Routes a received message. Stations without ACK_ID get it at once and it is confirmed to
    /// the broker; a station with ACK_ID shows it when the previous one was confirmed.
    fn deliver(&mut self, p: Publish, now: Instant, wall_ns: i64) {
        if self.will_message(&p) {
            self.session.confirm(p.pkid, self.session.epoch());
            return;
        }
        let Some(i) = self.router.route(&p.topic) else {
            self.unrouted += 1;
            tracing::debug!(topic = %payload::escape(&p.topic), unrouted = self.unrouted, "message matches no station");
            self.session.confirm(p.pkid, self.session.epoch());
            return;
        };
        let s = &mut self.stations[i];
        if s.command != StationCommand::On {
            tracing::debug!(station = %s.name, topic = %payload::escape(&p.topic), "message for a station that is off or simulated is dropped");
            self.session.confirm(p.pkid, self.session.epoch());
            return;
        }
        let epoch = self.session.epoch();
        if !s.gated {
            self.fill_inputs(i, &p, wall_ns);
            self.session.confirm(p.pkid, epoch);
            return;
        }
        let held = Held {
            publish: p,
            wall_ns,
            epoch,
        };
        if let Offered::Show(now_shown) = s
            .gate
            .offer(held, HeldLimit::station(s.params.max_held_messages))
        {
            self.show(i, now_shown, now);
            return;
        }
        if let Some(warning) = s.gate.warning() {
            tracing::warn!("{}", warning.text(&s.name));
        }
    }

    /// A message on a station's will topic (with its will payload, when one is set) says the
    /// device is gone: the station goes to hard error and the message is not data.
    fn will_message(&mut self, p: &Publish) -> bool {
        let Some(stations) = self.wills.get(&p.topic) else {
            return false;
        };
        let hit: Vec<usize> = stations
            .iter()
            .copied()
            .filter(|&i| {
                let swp = &self.stations[i].params.will_payload;
                swp.is_empty() || swp.as_bytes() == &p.payload[..]
            })
            .collect();
        for &i in &hit {
            let st = &mut self.stations[i];
            st.device_lost = true;
            let topic = payload::escape(&p.topic);
            tracing::info!("station '{}': will message on '{topic}'", st.name);
            let reason = format!("will message received on '{topic}'");
            self.refresh_station(i, &reason);
        }
        !hit.is_empty()
    }

    /// Shows a message of a gated station: its IN_* tags are set and it waits for ACK_ID.
    fn show(&mut self, i: usize, m: Held, now: Instant) {
        self.fill_inputs(i, &m.publish, m.wall_ns);
        self.stations[i].gate.mark_shown(&m, now);
    }

    /// The host wrote ACK_ID: confirm the shown message and show the next held one.
    fn acknowledge(&mut self, i: usize, object: &str, value: &Value) -> Result<(), String> {
        let s = &mut self.stations[i];
        let Value::Int(written) = *value else {
            return Err(format!(
                "{object}: ACK_ID takes the IN_ID value, not '{}'",
                value.to_text()
            ));
        };
        match s.gate.confirm(written) {
            Ok(shown) => {
                self.session.confirm(shown.pkid, shown.epoch);
                Ok(())
            }
            Err(Refusal::NothingShown) => Err(format!(
                "{object}: ACK_ID {written} written, but station '{}' has no message waiting for confirmation",
                s.name
            )),
            Err(Refusal::Mismatch { expected }) => Err(format!(
                "{object}: ACK_ID {written} does not confirm the message shown on station '{}': expected IN_ID {expected}",
                s.name
            )),
        }
    }

    /// After a confirmation has been reported, the next held message is shown.
    fn show_next(&mut self, i: usize) {
        if let Some(next) = self.stations[i].gate.take_next() {
            // Host calls carry no time; the reading is only for the unconfirmed warning.
            self.show(i, next, Instant::now());
        }
    }

    /// Sets a station's input tags from a message: with a JSON payload the JA= tags first, then
    /// IN_TOPIC, IN_DATA, IN_ID, so that a script triggered by IN_ID sees the whole message.
    /// Every value carries the payload's time stamp when there is one.
    fn fill_inputs(&mut self, i: usize, p: &Publish, wall_ns: i64) {
        let st = &self.stations[i];
        let mut flags = FLAG_VALID;
        if p.dup && p.qos == QoS::AtLeastOnce {
            flags |= FLAG_DUPLICATE;
        }
        if p.retain {
            flags |= FLAG_RETAINED;
        }
        let mut time_ns = wall_ns;
        // The payload is read in one pass for the addressed values only (json_extract.rs).
        let mut values = std::mem::take(&mut self.extracted);
        let read = if st.payload.json && (st.json_tags || st.payload.time_field.is_some()) {
            let read = st.extract.extract(&p.payload, &mut values);
            match &read {
                Ok(()) => {
                    let time_value = st
                        .payload
                        .time_field
                        .as_ref()
                        .and_then(|_| values.last())
                        .and_then(Option::as_ref)
                        .map(|f| &f.value);
                    if let Some(ns) = payload_time(st, &p.topic, time_value) {
                        time_ns = ns;
                        flags |= FLAG_TIME_FROM_PAYLOAD;
                    }
                }
                Err(e) => tracing::warn!(
                    "station '{}': the payload of '{}' is not JSON ({}); its JA= tags are invalid",
                    st.name,
                    payload::escape(&p.topic),
                    payload::escape(e),
                ),
            }
            Some(read.is_ok())
        } else {
            None
        };

        if let Some(parsed) = read {
            let mut slot = 0;
            for k in 0..self.stations[i].tags.len() {
                let t = self.stations[i].tags[k];
                let TagAddress::Json(path) = &self.tags[t].address else {
                    continue;
                };
                let found = values.get(slot).and_then(Option::as_ref);
                slot += 1;
                let value = if !parsed {
                    None
                } else {
                    match found {
                        None => {
                            self.warn_invalid(
                                t,
                                &format!(
                                    "JA={path} is not in the payload of '{}'",
                                    payload::escape(&p.topic)
                                ),
                            );
                            None
                        }
                        Some(f) => {
                            let text = f.text(&p.payload);
                            match json_value::from_json_text(&f.value, text, self.tags[t].ty) {
                                Ok(v) => Some(v),
                                Err(reason) => {
                                    let shown = payload::shorten(text);
                                    self.warn_invalid(t, &format!("JA={path} = {shown}: {reason}"));
                                    None
                                }
                            }
                        }
                    }
                };
                self.set_value(t, value, time_ns, flags);
            }
        }
        self.extracted = values;

        if self.stations[i].in_tags {
            self.fill_in_tags(i, p, time_ns, flags);
        }

        if self.stations[i].device_lost {
            self.stations[i].device_lost = false;
            self.refresh_station(i, "data received");
        }
    }

    /// IN_TOPIC, IN_DATA and IN_ID of a station, in that order.
    fn fill_in_tags(&mut self, i: usize, p: &Publish, time_ns: i64, flags: u32) {
        let text = match std::str::from_utf8(&p.payload) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(e) => {
                tracing::warn!(topic = %payload::escape(&p.topic), "payload is not valid UTF-8 ({e}); invalid bytes are replaced");
                String::from_utf8_lossy(&p.payload)
            }
        };
        let id = p.pkid.to_string();
        for (address, text) in [
            (TagAddress::InTopic, p.topic.as_str()),
            (TagAddress::InData, &text),
            (TagAddress::InId, id.as_str()),
        ] {
            for k in 0..self.stations[i].tags.len() {
                let t = self.stations[i].tags[k];
                if self.tags[t].address != address {
                    continue;
                }
                let value = match Value::parse(text, self.tags[t].ty) {
                    Ok(v) => Some(v),
                    Err(reason) => {
                        self.warn_invalid(t, &format!("{address}: {reason}"));
                        None
                    }
                };
                self.set_value(t, value, time_ns, flags);
            }
        }
    }

    fn warn_invalid(&self, t: usize, why: &str) {
        let tag = &self.tags[t];
        tracing::warn!(
            "tag '{}.{}': {why}; the tag is invalid",
            self.stations[tag.station].name,
            tag.name
        );
    }

    fn set_value(&mut self, t: usize, value: Option<Value>, time_ns: i64, flags: u32) {
        let tag = &mut self.tags[t];
        tag.valid = value.is_some();
        self.events.push_back(Event::TagValue {
            station: self.stations[tag.station].id,
            tag: tag.id,
            flags: if value.is_some() {
                flags
            } else {
                flags & !FLAG_VALID
            },
            value,
            time_ns,
        });
    }

    /// A write from the host. Unknown tag ids are refused here; everything else ends in exactly
    /// one [`Event::WriteDone`].
    pub fn write(&mut self, tag_id: u64, request: u64, value: Value) -> Result<(), ConfigError> {
        let &t = self
            .tag_ids
            .get(&tag_id)
            .ok_or_else(|| ConfigError::UnknownTag {
                line: self.name.clone(),
                id: tag_id,
            })?;
        let token = self.next_token;
        self.next_token += 1;
        let station = self.tags[t].station;
        self.writes.insert(
            token,
            PendingWrite {
                request,
                station: self.stations[station].id,
                tag: tag_id,
            },
        );
        match self.perform_write(t, token, value) {
            Ok(true) => {
                self.complete_write(token);
                self.show_next(station);
            }
            Ok(false) => {}
            Err(e) => self.fail_write(token, &e),
        }
        Ok(())
    }

    /// Ok(true): done now; Ok(false): completes when the broker acknowledges.
    fn perform_write(&mut self, t: usize, token: u64, value: Value) -> Result<bool, String> {
        let tag = &self.tags[t];
        let s = &self.stations[tag.station];
        let object = format!("tag '{}.{}'", s.name, tag.name);
        let shown = value.to_text();
        if !tag.ty.is_output() {
            return Err(format!(
                "{object} is an input tag ({}) and cannot be written",
                tag.ty
            ));
        }
        let value = value.convert(tag.ty).map_err(|reason| {
            format!(
                "{object}: value '{shown}' does not fit {}: {reason}",
                tag.ty
            )
        })?;
        match &tag.address {
            TagAddress::OutTopic => {
                let topic = value.to_text();
                check_publish_topic(&topic).map_err(|reason| {
                    format!(
                        "{object}: {} is not a topic to publish to: {reason}",
                        quote(&topic)
                    )
                })?;
                self.stations[tag.station].out_topic = Some(topic);
                Ok(true)
            }
            TagAddress::OutValue => {
                match s.command {
                    StationCommand::Off => {
                        return Err(format!("{object}: station '{}' is off", s.name))
                    }
                    StationCommand::Simulate => return Ok(true),
                    StationCommand::On => {}
                }
                let topic = s.out_topic.clone().ok_or_else(|| {
                    format!(
                        "{object}: station '{}' has no OUT_TOPIC value to publish to",
                        s.name
                    )
                })?;
                let payload = Bytes::from(value.to_text());
                let (qos, retain) = (self.config.publish_qos, self.config.publish_retain);
                self.session
                    .publish(token, &topic, payload, qos, retain)
                    .map_err(|e| format!("{object}: {e}"))?;
                Ok(false)
            }
            TagAddress::AckId => {
                let station = tag.station;
                self.acknowledge(station, &object, &value).map(|()| true)
            }
            TagAddress::Json(_) => Err(format!(
                "{object}: JA= tags are filled from received payloads and cannot be written"
            )),
            TagAddress::InTopic | TagAddress::InData | TagAddress::InId => Err(format!(
                "{object} is filled from received messages and cannot be written"
            )),
        }
    }

    fn complete_write(&mut self, token: u64) {
        if let Some(w) = self.writes.remove(&token) {
            self.events.push_back(Event::WriteDone {
                request: w.request,
                station: w.station,
                tag: w.tag,
                error: None,
            });
        }
    }

    fn fail_write(&mut self, token: u64, error: &str) {
        if let Some(w) = self.writes.remove(&token) {
            self.events.push_back(Event::WriteDone {
                request: w.request,
                station: w.station,
                tag: w.tag,
                error: Some(error.to_string()),
            });
        }
    }

    pub fn poll_transmit(&mut self, now: Instant) -> Option<Packet> {
        self.session.poll_transmit(now)
    }

    /// The packet just taken from `poll_transmit` could not be encoded (`error` says why), so it
    /// was not sent. A publication's write fails with that reason and the connection goes on;
    /// any other packet is needed for the session, so `Err` gives the reason to close the
    /// connection with.
    pub fn unsendable(&mut self, packet: Packet, error: &str) -> Result<(), String> {
        let what = crate::codec::packet_name(&packet);
        match packet {
            Packet::Publish(p) => {
                if let Some(token) = self.session.unsendable(&p) {
                    self.fail_write(token, &format!("the message cannot be sent: {error}"));
                }
                Ok(())
            }
            _ => Err(format!("cannot send {what} to the broker: {error}")),
        }
    }

    /// Everything taken from `poll_transmit` is on the socket.
    pub fn flushed(&mut self) {
        for token in self.session.flushed() {
            self.complete_write(token);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let unconfirmed = self
            .stations
            .iter()
            .filter_map(|s| s.gate.warning_deadline())
            .min();
        match (self.session.poll_timeout(), unconfirmed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Reading was paused for `d` (the host's queue was full): see [`Session::postpone`].
    pub fn postpone(&mut self, d: std::time::Duration) {
        self.session.postpone(d)
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ProtocolError> {
        self.warn_unconfirmed(now);
        self.session.handle_timeout(now)
    }

    /// Warns once per shown message that waited [`crate::ack_gate::UNCONFIRMED_WARNING_AFTER`]
    /// for ACK_ID.
    fn warn_unconfirmed(&mut self, now: Instant) {
        let unconfirmed = self.session.unconfirmed();
        for s in &mut self.stations {
            let Some((pkid, waited)) = s.gate.due_warning(now) else {
                continue;
            };
            tracing::warn!(
                "station '{}' has waited {}s for the host to confirm IN_ID {pkid} through ACK_ID \
                 ({} more messages held, {unconfirmed} unconfirmed on the line); unconfirmed QoS \
                 1/2 messages fill the broker's in-flight window, which stops delivery to the \
                 whole line",
                s.name,
                waited.as_secs(),
                s.gate.held(),
            );
        }
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Names for messages: (station name, tag name) of a tag id.
    pub fn tag_names(&self, tag_id: u64) -> Option<(&str, &str)> {
        let t = &self.tags[*self.tag_ids.get(&tag_id)?];
        Some((&self.stations[t.station].name, &t.name))
    }

    pub fn station_name(&self, station_id: u64) -> Option<&str> {
        Some(&self.stations[*self.station_ids.get(&station_id)?].name)
    }
}

/// The payload's time stamp, from the value found at the station's time field; a missing field
/// (unless Ignore Missing Time) or an unreadable one is warned about, and the caller keeps the
/// receive time.
fn payload_time(st: &Station, topic: &str, time_value: Option<&serde_json::Value>) -> Option<i64> {
    let topic = payload::escape(topic);
    match payload::stamp_from(&st.payload, time_value) {
        Stamp::Payload(ns) => return Some(ns),
        Stamp::None => {}
        Stamp::Missing if st.payload.ignore_missing_time => {}
        Stamp::Missing => tracing::warn!(
            "station '{}': no time field '{}' in the payload of '{topic}'; the receive time is used",
            st.name,
            st.payload.time_field.as_ref().map_or(String::new(), |f| f.to_string()),
        ),
        Stamp::Unreadable(why) => tracing::warn!(
            "station '{}': {why} (topic '{topic}'); the receive time is used",
            st.name,
        ),
    }
    None
}

/// A topic a PUBLISH may carry: not empty, no wildcards or NUL, and short enough for its MQTT
/// length field (a longer one would be sent as a malformed packet).
pub(crate) fn check_publish_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        Err("it is empty".into())
    } else if topic.contains(['+', '#', '\0']) {
        Err("it contains '+', '#' or NUL".into())
    } else if topic.len() > MQTT_STRING_MAX {
        Err(format!(
            "it is {} bytes long, more than the {MQTT_STRING_MAX} bytes an MQTT topic can hold",
            topic.len()
        ))
    } else {
        Ok(())
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
