//! Line parameters: the broker address and the protocol parameters, with their defaults.

use std::time::Duration;

use crate::codec::{LastWill, QoS};
use crate::config_redundant::{LineSide, RedundantConfig, REDUNDANT_PARAMETERS};
use crate::config_v5::{V5Config, V5_PARAMETERS};
use crate::error::ConfigError;
use crate::host_list::{self, HostEntry};
use crate::params::{normalize_key, unhandled, GivenOnce, Param, Secret};
/// Where the line's code has always found it.
pub use crate::payload_params::PayloadType;
use crate::payload_params::{PayloadParams, PAYLOAD_PARAMETERS};
use crate::proxy_url::{redact, ProxyConfig};
use crate::session::SessionConfig;
use crate::sparkplug::edge_settings::{EdgeConfig, EDGE_PARAMETERS};
use crate::tls_psk::{check_psk_identity, decode_psk_key, PskKeySource};

/// The Reorder Timeout when `sparkplug_reorder_timeout` is not given: the "couple of seconds"
/// Sparkplug 3.0 suggests for typical networks.
const DEFAULT_REORDER_TIMEOUT: Duration = Duration::from_secs(2);

/// The client id when `client_id` is not given (the protocol description's).
const DEFAULT_CLIENT_ID: &str = "D2000kom";

/// How bytes reach the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    /// MQTT over WebSocket (binary frames, subprotocol "mqtt").
    WebSocket,
}

/// Where the password comes from. Env and file are read at each connection attempt, so a rotated
/// secret is picked up without touching the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    Inline(Secret),
    /// The name of an environment variable of the host process.
    Env(String),
    /// A file whose content (without a trailing newline) is the password.
    File(String),
}

/// How the line proves who it is in CONNECT (`auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `user_name` and the password from its source (the default).
    Password,
    /// Azure IoT Hub: the user name and a SAS token built from the host, the client id (the
    /// device id) and `sas_key`, renewed before it expires (azure_sas.rs).
    AzureSas,
}

/// Everything a line is configured with. Defaults are those of the protocol description.
#[derive(Debug, Clone, PartialEq)]
pub struct LineConfig {
    /// Broker addresses, tried in order, each with its own port or the line's (host_list.rs).
    pub hosts: Vec<HostEntry>,
    /// The port as configured; see [`LineConfig::port`] for the one in use by entries that give
    /// none.
    pub port_param: Option<u16>,
    pub tls: bool,
    /// PEM file of the CA certificates to trust; empty: the system's roots.
    pub tls_ca_file: String,
    pub tls_client_cert_file: String,
    pub tls_client_key_file: String,
    pub transport: Transport,
    pub ws_path: String,
    pub full_debug: bool,
    pub user_name: String,
    pub password: PasswordSource,
    pub topic_filter: String,
    pub subscribe_qos: QoS,
    pub client_id: String,
    pub clean_session: bool,
    pub publish_qos: QoS,
    pub publish_retain: bool,
    pub keep_alive: u16,
    pub ping_interval: Duration,
    /// The line's payload parameters; a station's override them (payload_params.rs).
    pub payload: PayloadParams,
    /// The most bytes a gzip payload may inflate to (0: gzip payloads are not inflated).
    pub max_decompressed_size: usize,
    pub will_flag: bool,
    pub will_qos: QoS,
    pub will_retain: bool,
    pub will_topic: String,
    pub will_message: String,
    pub reply_timeout: Duration,
    pub wait_timeout: Duration,
    pub max_wait_retry: u32,
    /// Sparkplug B: the primary host id; empty: the line publishes no STATE.
    pub sparkplug_host_id: String,
    /// Sparkplug B: a node is asked for a rebirth at most once within this time.
    pub sparkplug_rebirth_debounce: Duration,
    /// Sparkplug B: how long a seq gap may stay open while later messages wait (the Reorder
    /// Timeout); zero asks for a rebirth at once.
    pub sparkplug_reorder_timeout: Duration,
    /// `clean_session` was given: a Sparkplug line refuses an explicit NO (settings.rs).
    pub(crate) clean_session_given: bool,
    /// The protocol version and what MQTT 5 adds (config_v5.rs).
    pub v5: V5Config,
    /// The Sparkplug edge node's parameters (sparkplug/edge_settings.rs).
    pub edge: EdgeConfig,
    /// OUT_VALUE payloads go out gzip-compressed (a station may say otherwise).
    pub compress_writes: bool,
    /// `auth`: a password, or an Azure IoT Hub SAS token.
    pub auth: Auth,
    /// The device key that signs SAS tokens (base64), from where `sas_key`, `sas_key_file` or
    /// `sas_key_env` says; `None`: none of them was given.
    pub sas_key: Option<PasswordSource>,
    /// How long each SAS token is valid (`sas_ttl`).
    pub sas_ttl: Duration,
    /// `topic_filter` was given: it is subscribed beside the stations' own subscriptions
    /// (`subscribe_station_address`); when not given, only they are.
    pub topic_filter_given: bool,
    /// TLS with a pre-shared key (tls_psk.rs): the identity sent to the broker; empty: no PSK.
    pub tls_psk_identity: String,
    /// Where the pre-shared key comes from; `None` unless one of its parameters was given.
    pub tls_psk_key: Option<PskKeySource>,
    /// The proxy that opens the TCP tunnel to the broker (proxy_url.rs); `None`: direct.
    pub proxy: Option<ProxyConfig>,
    /// A redundant line's second connection (config_redundant.rs); off unless `redundant_host`.
    pub redundant: RedundantConfig,
}

impl Default for LineConfig {
    fn default() -> Self {
        LineConfig {
            hosts: Vec::new(),
            port_param: None,
            tls: false,
            tls_ca_file: String::new(),
            tls_client_cert_file: String::new(),
            tls_client_key_file: String::new(),
            transport: Transport::Tcp,
            ws_path: "/mqtt".into(),
            full_debug: false,
            user_name: String::new(),
            password: PasswordSource::Inline(Secret::default()),
            topic_filter: "#".into(),
            subscribe_qos: QoS::AtLeastOnce,
            client_id: DEFAULT_CLIENT_ID.into(),
            clean_session: false,
            publish_qos: QoS::AtMostOnce,
            publish_retain: false,
            keep_alive: 0,
            ping_interval: Duration::from_secs(60),
            payload: PayloadParams::default(),
            max_decompressed_size: DEFAULT_MAX_DECOMPRESSED,
            will_flag: false,
            will_qos: QoS::AtMostOnce,
            will_retain: false,
            will_topic: String::new(),
            will_message: String::new(),
            reply_timeout: Duration::from_secs(20),
            wait_timeout: Duration::from_millis(100),
            max_wait_retry: 3,
            sparkplug_host_id: String::new(),
            sparkplug_rebirth_debounce: Duration::from_secs(5),
            sparkplug_reorder_timeout: DEFAULT_REORDER_TIMEOUT,
            clean_session_given: false,
            v5: V5Config::default(),
            edge: EdgeConfig::default(),
            compress_writes: false,
            auth: Auth::Password,
            sas_key: None,
            sas_ttl: crate::azure_sas::DEFAULT_TTL,
            topic_filter_given: false,
            tls_psk_identity: String::new(),
            tls_psk_key: None,
            proxy: None,
            redundant: RedundantConfig::default(),
        }
    }
}

/// Canonical names of the line parameters (after [`normalize_key`]).
pub const LINE_PARAMETERS: &[&str] = &[
    "host",
    "port",
    "tls",
    "tls_ca_file",
    "tls_client_cert_file",
    "tls_client_key_file",
    "transport",
    "ws_path",
    "password_env",
    "password_file",
    "full_debug",
    "user_name",
    "password",
    "topic_filter",
    "subscribe_qos",
    "client_id",
    "clean_session",
    "publish_qos",
    "publish_retain",
    "keep_alive",
    "ping_interval",
    "payload_type",
    "time_field_name",
    "time_mask",
    "ignore_missing_time",
    "csv_separator",
    "item_time_field",
    "quality_field",
    "valid_quality",
    "max_decompressed_size",
    "will_flag",
    "will_qos",
    "will_retain",
    "will_topic",
    "will_message",
    "reply_timeout",
    "wait_timeout",
    "max_wait_retry",
    "sparkplug_host_id",
    "sparkplug_rebirth_debounce",
    "sparkplug_reorder_timeout",
    "compress_writes",
    "auth",
    "sas_key",
    "sas_key_file",
    "sas_key_env",
    "sas_ttl",
    "tls_psk_identity",
    "tls_psk_key",
    "tls_psk_key_file",
    "tls_psk_key_env",
    "proxy",
];

/// Every canonical line parameter: the protocol's, then MQTT 5's.
fn known_parameters() -> &'static [&'static str] {
    static ALL: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        [
            LINE_PARAMETERS,
            V5_PARAMETERS,
            EDGE_PARAMETERS,
            REDUNDANT_PARAMETERS,
        ]
        .concat()
    })
}

/// Other spellings an engineering tool may store.
fn alias(key: &str) -> &str {
    match key {
        "clean_session_flag" => "clean_session",
        "username" | "user" => "user_name",
        "max_wait_retries" => "max_wait_retry",
        "hosts" | "address" => "host",
        k => k,
    }
}

/// 16 MiB: a quarter of the largest packet the line accepts.
pub const DEFAULT_MAX_DECOMPRESSED: usize = 16 * 1024 * 1024;

/// 256 MiB, the largest packet MQTT can carry.
const MAX_DECOMPRESSED_LIMIT: u64 = 256 * 1024 * 1024;

/// Which warnings configuration produced (the caller logs them).
pub type Warnings = Vec<String>;

impl LineConfig {
    /// What the MQTT session needs of this configuration to connect.
    pub fn session(&self) -> SessionConfig {
        SessionConfig {
            client_id: self.client_id.clone(),
            user_name: self.user_name.clone(),
            clean_session: self.clean_session,
            keep_alive: self.keep_alive,
            ping_interval: self.ping_interval,
            reply_timeout: self.reply_timeout,
            topic_filter: self.topic_filter.clone(),
            station_filters: Default::default(),
            subscribe_qos: self.subscribe_qos,
            last_will: self.will_flag.then(|| {
                LastWill::new(
                    self.will_topic.clone(),
                    self.will_message.clone().into_bytes(),
                    self.will_qos,
                    self.will_retain,
                    None,
                )
            }),
            protocol: self.v5.protocol,
            v5: self.v5.options(self.clean_session),
        }
    }

    /// Builds a configuration from key/value text. `object` names the line in messages.
    pub fn from_params<'a>(
        object: &str,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(LineConfig, Warnings), ConfigError> {
        let mut cfg = LineConfig::default();
        cfg.apply(object, params)?;
        let warnings = cfg.validate(object)?;
        Ok((cfg, warnings))
    }

    /// A copy with `params` applied over this configuration (a change at run time).
    pub fn with_changes<'a>(
        &self,
        object: &str,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(LineConfig, Warnings), ConfigError> {
        let mut cfg = self.clone();
        cfg.apply(object, params)?;
        let warnings = cfg.validate(object)?;
        Ok((cfg, warnings))
    }

    fn apply<'a>(
        &mut self,
        object: &str,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), ConfigError> {
        let mut given = GivenOnce::default();
        for (name, value) in params {
            let key = normalize_key(name);
            let p = Param {
                object,
                name,
                value,
            };
            let accepted = given.accept(&p, &key, alias(&key), known_parameters());
            match accepted.map_err(|e| hide_secret(alias(&key), e))? {
                "host" => self.hosts = host_list::from_param(&p)?,
                "port" => self.port_param = Some(p.integer(1, 65535)? as u16),
                "tls" => self.tls = p.yes_no()?,
                "tls_ca_file" => self.tls_ca_file = value.trim().to_string(),
                "tls_client_cert_file" => self.tls_client_cert_file = value.trim().to_string(),
                "tls_client_key_file" => self.tls_client_key_file = value.trim().to_string(),
                "transport" => {
                    self.transport = match normalize_key(value).as_str() {
                        "tcp" => Transport::Tcp,
                        "websocket" | "websockets" | "ws" => Transport::WebSocket,
                        _ => return Err(p.invalid("expected tcp or websocket")),
                    }
                }
                "ws_path" => {
                    if !value.starts_with('/') {
                        return Err(p.invalid("a WebSocket path starts with '/'"));
                    }
                    self.ws_path = value.to_string();
                }
                "password_env" => {
                    if value.trim().is_empty() {
                        return Err(p.invalid("expected the name of an environment variable"));
                    }
                    self.password = PasswordSource::Env(value.trim().to_string());
                }
                "password_file" => {
                    if value.trim().is_empty() {
                        return Err(p.invalid("expected a file path"));
                    }
                    self.password = PasswordSource::File(value.trim().to_string());
                }
                "full_debug" => self.full_debug = p.yes_no()?,
                "user_name" => self.user_name = value.to_string(),
                "password" => self.password = PasswordSource::Inline(Secret::new(value)),
                "topic_filter" => {
                    check_topic_filter(value).map_err(|r| p.invalid(r))?;
                    self.topic_filter = value.to_string();
                    self.topic_filter_given = true;
                }
                "subscribe_qos" => self.subscribe_qos = p.qos()?,
                "client_id" => self.client_id = value.to_string(),
                "clean_session" => {
                    self.clean_session = p.yes_no()?;
                    self.clean_session_given = true;
                }
                "publish_qos" => self.publish_qos = p.qos()?,
                "publish_retain" => self.publish_retain = p.yes_no()?,
                "keep_alive" => self.keep_alive = p.integer(0, 65535)? as u16,
                "ping_interval" => {
                    self.ping_interval = Duration::from_secs(p.integer(0, 3600)?);
                }
                "max_decompressed_size" => {
                    self.max_decompressed_size = p.integer(0, MAX_DECOMPRESSED_LIMIT)? as usize
                }
                "will_flag" => self.will_flag = p.yes_no()?,
                "will_qos" => self.will_qos = p.qos()?,
                "will_retain" => self.will_retain = p.yes_no()?,
                "will_topic" => {
                    if value.contains(['+', '#']) {
                        return Err(p.invalid("a will topic may not contain '+' or '#'"));
                    }
                    self.will_topic = value.to_string();
                }
                "will_message" => self.will_message = value.to_string(),
                "reply_timeout" => self.reply_timeout = p.seconds(86400.0)?,
                "wait_timeout" => self.wait_timeout = p.seconds(3600.0)?,
                "max_wait_retry" => self.max_wait_retry = p.integer(0, 1_000_000)? as u32,
                "sparkplug_host_id" => {
                    if value.contains(['/', '+', '#']) {
                        return Err(p.invalid("a host id may not contain '/', '+' or '#'"));
                    }
                    self.sparkplug_host_id = value.trim().to_string();
                }
                "sparkplug_rebirth_debounce" => {
                    self.sparkplug_rebirth_debounce = p.seconds(3600.0)?;
                }
                "sparkplug_reorder_timeout" => {
                    self.sparkplug_reorder_timeout =
                        Duration::from_millis(p.integer(0, 3_600_000)?);
                }
                other if PAYLOAD_PARAMETERS.contains(&other) => self.payload.set(other, &p)?,
                "compress_writes" => self.compress_writes = p.yes_no()?,
                "auth" => {
                    self.auth = match normalize_key(value).as_str() {
                        "password" => Auth::Password,
                        "azure_sas" => Auth::AzureSas,
                        _ => return Err(p.invalid("expected password or azure-sas")),
                    }
                }
                "sas_key" => {
                    if let Err(e) = crate::azure_sas::decode_key(value) {
                        // The key itself is not repeated in the message.
                        return Err(ConfigError::InvalidValue {
                            object: object.to_string(),
                            param: name.to_string(),
                            value: "***".into(),
                            reason: e.to_string(),
                        });
                    }
                    self.sas_key = Some(PasswordSource::Inline(Secret::new(value.trim())));
                }
                "sas_key_file" => {
                    if value.trim().is_empty() {
                        return Err(p.invalid("expected a file path"));
                    }
                    self.sas_key = Some(PasswordSource::File(value.trim().to_string()));
                }
                "sas_key_env" => {
                    if value.trim().is_empty() {
                        return Err(p.invalid("expected the name of an environment variable"));
                    }
                    self.sas_key = Some(PasswordSource::Env(value.trim().to_string()));
                }
                "sas_ttl" => {
                    use crate::azure_sas::{MAX_TTL_SECS, MIN_TTL_SECS};
                    self.sas_ttl = Duration::from_secs(p.integer(MIN_TTL_SECS, MAX_TTL_SECS)?);
                }
                "tls_psk_identity" => {
                    if let Some(reason) = check_psk_identity(value.trim()) {
                        return Err(p.invalid(reason));
                    }
                    self.tls_psk_identity = value.trim().to_string();
                }
                "tls_psk_key" => {
                    decode_psk_key(value).map_err(|r| hidden(&p, "***", r))?;
                    self.tls_psk_key = Some(PskKeySource::Inline(Secret::new(value.trim())));
                }
                "tls_psk_key_file" => {
                    if value.trim().is_empty() {
                        return Err(p.invalid("expected a file path"));
                    }
                    self.tls_psk_key = Some(PskKeySource::File(value.trim().to_string()));
                }
                "tls_psk_key_env" => {
                    if value.trim().is_empty() {
                        return Err(p.invalid("expected the name of an environment variable"));
                    }
                    self.tls_psk_key = Some(PskKeySource::Env(value.trim().to_string()));
                }
                "proxy" => {
                    self.proxy = if value.trim().is_empty() {
                        None
                    } else {
                        let proxy = ProxyConfig::parse(value)
                            .map_err(|r| hidden(&p, &redact(value.trim()), r))?;
                        Some(proxy)
                    };
                }
                other if V5_PARAMETERS.contains(&other) => self.v5.apply(other, &p)?,
                other if EDGE_PARAMETERS.contains(&other) => self.edge.apply(other, &p)?,
                other if REDUNDANT_PARAMETERS.contains(&other) => {
                    self.redundant.apply(other, &p)?
                }
                other => return Err(unhandled(object, other)),
            }
        }
        Ok(())
    }

    /// How this line's payloads are read (Text unless `payload_type` says otherwise).
    pub fn payload_type(&self) -> PayloadType {
        self.payload.payload_type.unwrap_or_default()
    }

    /// The port in use: as configured, else 8883 with TLS and 1883 without.
    pub fn port(&self) -> u16 {
        self.port_param
            .unwrap_or(if self.tls { 8883 } else { 1883 })
    }

    /// The port of connection B: `redundant_port`, else the line's.
    pub fn redundant_port(&self) -> u16 {
        self.redundant.port.unwrap_or_else(|| self.port())
    }

    /// The client id of connection B: `redundant_client_id`, else the line's.
    pub fn redundant_client_id(&self) -> &str {
        self.redundant
            .client_id
            .as_deref()
            .unwrap_or(&self.client_id)
    }

    fn validate(&mut self, object: &str) -> Result<Warnings, ConfigError> {
        let mut warnings = Vec::new();
        let no_cert = self.tls_client_cert_file.is_empty();
        if no_cert != self.tls_client_key_file.is_empty() {
            return Err(ConfigError::InvalidValue {
                object: object.to_string(),
                param: if no_cert {
                    "tls_client_cert_file"
                } else {
                    "tls_client_key_file"
                }
                .into(),
                value: String::new(),
                reason: "a client certificate needs both tls_client_cert_file and \
                         tls_client_key_file"
                    .into(),
            });
        }
        let tls_files = !self.tls_ca_file.is_empty() || !no_cert;
        if !self.tls && tls_files {
            warnings.push(format!(
                "{object}: TLS files are configured but tls is NO, so they are not used"
            ));
        }
        if self.hosts.is_empty() {
            return Err(ConfigError::InvalidValue {
                object: object.to_string(),
                param: "host".into(),
                value: String::new(),
                reason: "no broker host is configured".into(),
            });
        }
        if self.will_flag && self.will_topic.is_empty() {
            return Err(ConfigError::InvalidValue {
                object: object.to_string(),
                param: "will_topic".into(),
                value: String::new(),
                reason: "Will Flag is YES, so a will topic is required".into(),
            });
        }
        if self.payload_type() == PayloadType::Csv {
            // The line's own fields must fit its payload type; a station's are checked with it.
            for (param, value) in [
                ("time_field_name", &self.payload.time_field_name),
                ("quality_field", &self.payload.quality_field),
            ] {
                let value = value.as_deref().unwrap_or_default();
                crate::payload_params::field_position(value).map_err(|reason| {
                    ConfigError::InvalidValue {
                        object: object.to_string(),
                        param: param.into(),
                        value: value.to_string(),
                        reason,
                    }
                })?;
            }
        }
        warnings.extend(self.validate_sparkplug(object)?);
        warnings.extend(self.validate_edge(object)?);
        warnings.extend(self.validate_psk(object)?);
        let side = LineSide {
            edge_node: self.is_edge_node(),
            azure_sas: self.auth == Auth::AzureSas,
            clean_session: self.clean_session,
            port: self.redundant_port(),
        };
        warnings.extend(self.redundant.validate(object, side)?);
        if self.client_id.is_empty() && !self.clean_session {
            warnings.push(format!(
                "{object}: client_id is empty, so the broker assigns one and clean_session is \
                 forced to YES"
            ));
            self.clean_session = true;
        }
        warnings.extend(self.v5.warning(object));
        warnings.extend(self.compress_writes_warning(object));
        warnings.extend(self.shared_subscription_warning(object));
        self.validate_auth(object)?;
        Ok(warnings)
    }

    /// On a 3.1.1 line compressed writes carry no Content-Type: only a reader that looks at the
    /// payload's first bytes (1f 8b), as this line does, knows they are gzip.
    fn compress_writes_warning(&self, object: &str) -> Option<String> {
        (self.compress_writes && self.v5.protocol == crate::codec::Protocol::V311).then(|| {
            format!(
                "{object}: compress_writes is YES on an MQTT 3.1.1 line: writes are gzip without \
                 a Content-Type, so their readers must recognise gzip by its first bytes (1f 8b)"
            )
        })
    }

    /// `auth = azure-sas` needs a key and a client id (the device id) and builds the user name
    /// and password itself; a key without it is a mistake, not something to ignore.
    fn validate_auth(&self, object: &str) -> Result<(), ConfigError> {
        let refuse = |param: &str, value: &str, reason: &str| ConfigError::InvalidValue {
            object: object.to_string(),
            param: param.into(),
            value: value.into(),
            reason: reason.into(),
        };
        match self.auth {
            Auth::Password if self.sas_key.is_some() => Err(refuse(
                "auth",
                "password",
                "a SAS key (sas_key, sas_key_file or sas_key_env) is given, so auth must be \
                 azure-sas",
            )),
            Auth::Password => Ok(()),
            Auth::AzureSas => {
                if self.sas_key.is_none() {
                    return Err(refuse(
                        "auth",
                        "azure-sas",
                        "needs the device key: sas_key, sas_key_file or sas_key_env",
                    ));
                }
                if self.client_id.is_empty() {
                    return Err(refuse(
                        "client_id",
                        "",
                        "auth = azure-sas needs the device id as client_id",
                    ));
                }
                if !self.user_name.is_empty() {
                    return Err(refuse(
                        "user_name",
                        &self.user_name,
                        "auth = azure-sas builds the user name itself; remove user_name",
                    ));
                }
                if self.password != PasswordSource::Inline(Secret::default()) {
                    return Err(refuse(
                        "password",
                        "***",
                        "auth = azure-sas sends a SAS token as the password; remove password, \
                         password_file and password_env",
                    ));
                }
                Ok(())
            }
        }
    }
}

impl LineConfig {
    /// TLS-PSK needs both halves and TLS; the certificate files are then not used.
    fn validate_psk(&self, object: &str) -> Result<Warnings, ConfigError> {
        let error = |param: &str, reason: &str| ConfigError::InvalidValue {
            object: object.to_string(),
            param: param.into(),
            value: String::new(),
            reason: reason.into(),
        };
        match (self.tls_psk_identity.is_empty(), self.tls_psk_key.is_some()) {
            (true, false) => return Ok(Vec::new()),
            (true, true) => {
                return Err(error(
                    "tls_psk_identity",
                    "a pre-shared key is configured, so tls_psk_identity is required",
                ))
            }
            (false, false) => {
                return Err(error(
                    "tls_psk_key",
                    "tls_psk_identity is set, so a key is required (tls_psk_key, \
                     tls_psk_key_file or tls_psk_key_env)",
                ))
            }
            (false, true) => {}
        }
        if !self.tls {
            return Err(error(
                "tls",
                "TLS-PSK is configured but tls is NO: set tls = YES (otherwise the key would \
                 not be used and the connection would be plain text)",
            ));
        }
        let mut warnings = Vec::new();
        if !self.tls_ca_file.is_empty() || !self.tls_client_cert_file.is_empty() {
            warnings.push(format!(
                "{object}: TLS-PSK is configured, so tls_ca_file and the client certificate are \
                 not used (the pre-shared key authenticates both sides)"
            ));
        }
        Ok(warnings)
    }

    /// A shared subscription splits one stream over several lines, each in its own process;
    /// with the default client id they would all connect under one id, and the broker (a
    /// cluster across its nodes too) closes one connection for each new one: the lines take
    /// turns instead of sharing (docs/scale-out.md).
    fn shared_subscription_warning(&self, object: &str) -> Option<String> {
        (self.topic_filter.starts_with("$share/") && self.client_id == DEFAULT_CLIENT_ID).then(
            || {
                format!(
                    "{object}: topic_filter is a shared subscription but client_id is the default \
                 '{DEFAULT_CLIENT_ID}': give each line that shares the group its own client_id, \
                 or they disconnect each other"
                )
            },
        )
    }
}

/// A refusal of the shared checks (NUL, length) for a parameter whose value is or holds a secret:
/// the password and the pre-shared key are shown as `***`, the proxy without its password.
fn hide_secret(canonical: &str, e: ConfigError) -> ConfigError {
    match e {
        ConfigError::InvalidValue {
            object,
            param,
            value,
            reason,
        } => {
            let value = match canonical {
                "password" | "tls_psk_key" => "***".to_string(),
                "proxy" => redact(&value),
                _ => value,
            };
            ConfigError::InvalidValue {
                object,
                param,
                value,
                reason,
            }
        }
        other => other,
    }
}

/// An invalid value whose text is a secret (a key) or holds one (a proxy's password): the
/// message shows `shown` instead.
fn hidden(p: &Param, shown: &str, reason: String) -> ConfigError {
    ConfigError::InvalidValue {
        object: p.object.to_string(),
        param: p.name.to_string(),
        value: shown.to_string(),
        reason,
    }
}

/// Checks an MQTT 3.1.1 topic filter: not empty, `#` only as the whole last level, `+` only as a
/// whole level.
pub fn check_topic_filter(filter: &str) -> Result<(), String> {
    if filter.is_empty() {
        return Err("a topic filter may not be empty".into());
    }
    if filter.contains('\0') {
        return Err("a topic filter may not contain NUL".into());
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err("'#' must stand alone as the last level".into());
        }
        if level.contains('+') && *level != "+" {
            return Err("'+' must stand alone as a whole level".into());
        }
    }
    Ok(())
}

/// Line `L1` on 127.0.0.1 with `params`: one way to read line parameters for the unit tests of
/// every module that adds some (MQTT 5, Sparkplug host and edge node).
#[cfg(test)]
pub(crate) fn parse_test_line(
    params: &[(&str, &str)],
) -> Result<(LineConfig, Warnings), ConfigError> {
    let mut all = vec![("host", "127.0.0.1")];
    all.extend_from_slice(params);
    LineConfig::from_params("line 'L1'", all)
}

#[cfg(test)]
mod tests {
    use super::parse_test_line as parse;
    use super::*;

    #[test]
    fn defaults_are_the_protocol_defaults() {
        let (c, w) = parse(&[]).unwrap();
        assert!(w.is_empty());
        assert_eq!(c.port(), 1883);
        assert!(!c.tls);
        assert_eq!(c.transport, Transport::Tcp);
        assert_eq!(c.ws_path, "/mqtt");
        assert_eq!(c.topic_filter, "#");
        assert_eq!(c.subscribe_qos, QoS::AtLeastOnce);
        assert_eq!(c.client_id, "D2000kom");
        assert!(!c.clean_session);
        assert_eq!(c.publish_qos, QoS::AtMostOnce);
        assert_eq!(c.keep_alive, 0);
        assert_eq!(c.ping_interval, Duration::from_secs(60));
        assert_eq!(c.reply_timeout, Duration::from_secs(20));
        assert_eq!(c.wait_timeout, Duration::from_millis(100));
        assert_eq!(c.max_wait_retry, 3);
        assert_eq!(c.payload, PayloadParams::default());
        assert_eq!(c.payload_type(), PayloadType::Text);
        assert_eq!(
            crate::payload_params::DEFAULT_TIME_MASK,
            "yyyy-mm-dd hh:mi:ss.mss"
        );
    }

    #[test]
    fn engineering_tool_spellings_are_accepted() {
        let (c, _) = parse(&[
            ("Topic Filter", "a/+/c"),
            ("Subscribe QoS", "QoS_2"),
            ("Clean Session Flag", "YES"),
            ("Max. Wait Retry", "5"),
            ("Payload Type", "JSON"),
            ("Wait Timeout", "0.005"),
        ])
        .unwrap();
        assert_eq!(c.topic_filter, "a/+/c");
        assert_eq!(c.subscribe_qos, QoS::ExactlyOnce);
        assert!(c.clean_session);
        assert_eq!(c.max_wait_retry, 5);
        assert_eq!(c.payload_type(), PayloadType::Json);
        assert_eq!(c.wait_timeout, Duration::from_millis(5));
    }

    #[test]
    fn hosts_split_on_comma_and_semicolon() {
        let (c, _) = LineConfig::from_params("l", [("host", "a, b;c")]).unwrap();
        let names: Vec<_> = c.hosts.iter().map(|h| h.host.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn bad_values_name_object_parameter_and_value() {
        for (param, value, needle) in [
            ("subscribe_qos", "QoS_7", "QoS_0, QoS_1 or QoS_2"),
            ("keep_alive", "99999", "0 to 65535"),
            ("ping_interval", "3601", "0 to 3600"),
            ("topic_filter", "a/#/b", "'#' must stand alone"),
            ("topic_filter", "a/b+", "'+' must stand alone"),
            ("clean_session", "perhaps", "YES or NO"),
            ("payload_type", "XML", "Text only"),
            ("csv_separator", ",;", "one character"),
            ("quality_field", "a..b", "position 3"),
            ("valid_quality", " , ", "at least one"),
            ("max_decompressed_size", "268435457", "from 0 to 268435456"),
            ("port", "0", "1 to 65535"),
            ("will_topic", "a/#", "may not contain"),
            ("time_mask", "mm/dd", "needs a year"),
            ("time_field_name", "a[0]", "count from 1"),
        ] {
            let err = parse(&[(param, value)]).unwrap_err().to_string();
            assert!(err.contains("line 'L1'"), "{err}");
            assert!(err.contains(param), "{err}");
            assert!(err.contains(value), "{err}");
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn a_shared_subscription_with_the_default_client_id_is_warned_about() {
        let rows: &[(&[(&str, &str)], bool)] = &[
            (&[("topic_filter", "$share/scada/plant/#")], true),
            (
                &[
                    ("topic_filter", "$share/scada/plant/#"),
                    ("client_id", "scada-1"),
                ],
                false,
            ),
            (&[("topic_filter", "plant/#")], false),
        ];
        for (params, warned) in rows {
            let (_, warnings) = parse(params).unwrap();
            let found = warnings.iter().any(|w| w.contains("its own client_id"));
            assert_eq!(found, *warned, "{params:?}: {warnings:?}");
        }
    }

    #[test]
    fn a_bad_port_in_the_host_list_names_the_line_the_entry_and_the_value() {
        let err = LineConfig::from_params("line 'L1'", [("host", "a:1883; b:99999")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "line 'L1': parameter 'host' = 'a:1883; b:99999' is invalid: entry 'b:99999': port \
             '99999' is not a number from 1 to 65535"
        );
        let (c, _) =
            LineConfig::from_params("l", [("host", "a:1884; b"), ("port", "8883")]).unwrap();
        let ports: Vec<_> = c.hosts.iter().map(|h| h.port_or(c.port())).collect();
        assert_eq!(ports, [1884, 8883]);
    }

    #[test]
    fn csv_lines_need_field_positions() {
        for (param, value) in [("time_field_name", "ts"), ("quality_field", "0")] {
            let err = parse(&[("payload_type", "CSV"), (param, value)])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("line 'L1'") && err.contains(param) && err.contains("field position"),
                "{err}"
            );
        }
        let (c, _) = parse(&[
            ("payload_type", "CSV"),
            ("time_field_name", "2"),
            ("quality_field", "3"),
        ])
        .unwrap();
        assert_eq!(c.payload_type(), PayloadType::Csv);
    }

    #[test]
    fn unknown_parameter_suggests_nearest() {
        let err = parse(&[("topic_filtr", "#")]).unwrap_err().to_string();
        assert!(err.contains("unknown parameter 'topic_filtr'"), "{err}");
        assert!(err.contains("did you mean 'topic_filter'"), "{err}");
    }

    #[test]
    fn will_flag_needs_topic() {
        let err = parse(&[("will_flag", "YES")]).unwrap_err().to_string();
        assert!(err.contains("will_topic"), "{err}");
        assert!(parse(&[("will_flag", "YES"), ("will_topic", "d2000/lwt")]).is_ok());
    }

    #[test]
    fn empty_client_id_forces_clean_session() {
        let (c, w) = parse(&[("client_id", "")]).unwrap();
        assert!(c.clean_session);
        assert!(w[0].contains("clean_session is forced"), "{w:?}");
    }

    #[test]
    fn missing_host_is_an_error() {
        let err = LineConfig::from_params("line 'L1'", []).unwrap_err();
        assert!(err.to_string().contains("no broker host"));
    }

    #[test]
    fn password_is_not_in_debug_output() {
        let (c, _) = parse(&[("password", "s3cr3t")]).unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert_eq!(c.password, PasswordSource::Inline(Secret::new("s3cr3t")));
        let (c, _) = parse(&[("password_env", "MQTT_PASS")]).unwrap();
        assert_eq!(c.password, PasswordSource::Env("MQTT_PASS".into()));
        let (c, _) = parse(&[("password_file", "/run/secrets/mqtt")]).unwrap();
        assert_eq!(c.password, PasswordSource::File("/run/secrets/mqtt".into()));
    }

    #[test]
    fn tls_and_websocket() {
        let (c, _) = parse(&[("tls", "YES"), ("transport", "websocket")]).unwrap();
        assert_eq!(c.port(), 8883, "TLS changes the default port");
        assert_eq!(c.transport, Transport::WebSocket);
        let (c, _) = parse(&[("tls", "YES"), ("port", "443")]).unwrap();
        assert_eq!(c.port(), 443);
        let err = parse(&[("tls", "YES"), ("tls_client_cert_file", "c.pem")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls_client_key_file"), "{err}");
        let (_, w) = parse(&[("tls_ca_file", "ca.pem")]).unwrap();
        assert!(w[0].contains("tls is NO"), "{w:?}");
        assert!(parse(&[("transport", "quic")]).is_err());
        assert!(parse(&[("ws_path", "mqtt")]).is_err());
    }

    #[test]
    fn tls_psk_parameters() {
        let (c, w) = parse(&[
            ("tls", "YES"),
            ("tls_psk_identity", "line-1"),
            ("tls_psk_key", "0a1B2c"),
        ])
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.tls_psk_identity, "line-1");
        assert_eq!(
            c.tls_psk_key,
            Some(PskKeySource::Inline(Secret::new("0a1B2c")))
        );
        assert!(!format!("{c:?}").contains("0a1B2c"));
        let (c, _) = parse(&[
            ("tls", "YES"),
            ("TLS PSK Identity", "id"),
            ("tls_psk_key_env", "PSK"),
        ])
        .unwrap();
        assert_eq!(c.tls_psk_key, Some(PskKeySource::Env("PSK".into())));
        let (c, _) = parse(&[
            ("tls", "YES"),
            ("tls_psk_identity", "id"),
            ("tls_psk_key_file", " /run/psk "),
        ])
        .unwrap();
        assert_eq!(c.tls_psk_key, Some(PskKeySource::File("/run/psk".into())));
        let (_, w) = parse(&[
            ("tls", "YES"),
            ("tls_ca_file", "ca.pem"),
            ("tls_psk_identity", "id"),
            ("tls_psk_key", "00"),
        ])
        .unwrap();
        assert!(w[0].contains("not used"), "{w:?}");

        let rows: &[(&[(&str, &str)], &str)] = &[
            (
                &[("tls", "YES"), ("tls_psk_identity", "id")],
                "'tls_psk_key'",
            ),
            (
                &[("tls", "YES"), ("tls_psk_key", "00")],
                "'tls_psk_identity'",
            ),
            (
                &[("tls_psk_identity", "id"), ("tls_psk_key", "00")],
                "tls is NO",
            ),
            (
                &[
                    ("tls", "YES"),
                    ("tls_psk_identity", "id"),
                    ("tls_psk_key", "s3cr3tzz"),
                ],
                "not hexadecimal",
            ),
            (&[("tls_psk_key_file", " ")], "expected a file path"),
            (&[("tls_psk_key_env", "")], "environment variable"),
            (&[("tls_psk_identity", " ")], "identity is empty"),
        ];
        for (params, want) in rows {
            let err = parse(params).expect_err(want).to_string();
            assert!(err.contains(want), "{params:?}: {err}");
            assert!(!err.contains("s3cr3t"), "{err}");
        }
    }

    #[test]
    fn secrets_with_a_nul_are_refused_without_showing_them() {
        for param in ["password", "tls_psk_key", "proxy"] {
            let err = parse(&[(param, "http://op:s3cr3t\0@h:1")])
                .unwrap_err()
                .to_string();
            assert!(err.contains("NUL") && err.contains(param), "{err}");
            assert!(!err.contains("s3cr3t"), "{err}");
        }
    }

    #[test]
    fn proxy_parameter() {
        let (c, _) = parse(&[("proxy", "socks5://op:s3cr3t@127.0.0.1:1080")]).unwrap();
        let proxy = c.proxy.clone().unwrap();
        assert_eq!(proxy.display(), "socks5://op@127.0.0.1:1080");
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let (c, _) = parse(&[("proxy", "")]).unwrap();
        assert_eq!(c.proxy, None);
        let err = parse(&[("proxy", "ftp://op:s3cr3t@proxy:21")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'proxy'") && err.contains("ftp://op:***@proxy:21"),
            "{err}"
        );
        assert!(!err.contains("s3cr3t"), "{err}");
    }
}
