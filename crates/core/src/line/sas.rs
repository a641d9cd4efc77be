//! `auth = azure-sas` on the line: the CONNECT of each connection carries the IoT Hub user name
//! and a fresh SAS token, and the connection is renewed (closed and opened again with a new
//! token) after four fifths of the token's life, on the line's clock (azure_sas.rs).

use std::time::Instant;

use super::Line;
use crate::azure_sas::{self, SasKeyError};
use crate::config::Auth;
use crate::event::LogLevel;
use crate::ids::LinkId;
use crate::params::Secret;

/// When the current connection's token is renewed.
#[derive(Debug, Default)]
pub(super) struct SasRenewal {
    /// The deadline: the connection's token has lived four fifths of `sas_ttl`.
    at: Option<Instant>,
    /// The deadline passed: the shell closes the connection and opens a new one.
    due: bool,
}

impl Line {
    /// A transport to `addr` (`host:port`) is open at `now`, `wall_ns` (Unix ns): queue CONNECT.
    /// `secret` is what the shell read from the configured source: the password, or with
    /// `auth = azure-sas` the device key, which signs a token valid for `sas_ttl` from
    /// `wall_ns`. A key that is not base64 is the reason the attempt fails.
    pub fn transport_open_at(
        &mut self,
        addr: &str,
        secret: &Secret,
        now: Instant,
        wall_ns: i64,
    ) -> Result<(), SasKeyError> {
        self.transport_open_at_on(LinkId::A, addr, secret, now, wall_ns)
    }

    /// [`Line::transport_open_at`] for connection `id` (a redundant line refuses `azure-sas`,
    /// config_redundant.rs, so B never signs a token).
    pub fn transport_open_at_on(
        &mut self,
        id: LinkId,
        addr: &str,
        secret: &Secret,
        now: Instant,
        wall_ns: i64,
    ) -> Result<(), SasKeyError> {
        if self.config.auth != Auth::AzureSas || id != LinkId::A {
            self.transport_open_on(id, addr, secret, now);
            return Ok(());
        }
        let key = azure_sas::decode_key(secret.expose())?;
        let host = host_of(addr);
        let device = self.config.client_id.clone();
        let ttl = self.config.sas_ttl;
        let expiry = azure_sas::expiry(wall_ns, ttl);
        let token = azure_sas::token(host, &device, &key, expiry);
        let user_name = azure_sas::user_name(host, &device);
        self.open_session(LinkId::A, addr, &token, Some(user_name), now);
        self.sas = SasRenewal {
            at: Some(now + azure_sas::renew_after(ttl)),
            due: false,
        };
        self.log(
            LogLevel::Debug,
            format!(
                "Azure SAS token for device {} valid until {expiry} (Unix seconds); renewed in \
                 {:?}",
                crate::text::quote(&device),
                azure_sas::renew_after(ttl)
            ),
        );
        Ok(())
    }

    /// The connection's SAS token is due for renewal: the shell closes the connection
    /// deliberately (a restart) and connects again with a fresh token.
    pub fn renewal_due(&self) -> bool {
        self.sas.due
    }

    pub(super) fn sas_timeout(&self) -> Option<Instant> {
        self.sas.at
    }

    /// Marks the renewal due once its deadline passed.
    pub(super) fn sas_timers(&mut self, now: Instant) {
        if self.sas.at.is_some_and(|at| now >= at) {
            self.sas = SasRenewal {
                at: None,
                due: true,
            };
            self.log(
                LogLevel::Info,
                "the Azure SAS token is renewed: reconnecting before it expires".into(),
            );
        }
    }

    /// The connection ended: its token is of no further use.
    pub(super) fn sas_closed(&mut self) {
        self.sas = SasRenewal::default();
    }
}

/// The host of `host:port` (`[v6]:port` for IPv6), as the token and user name name it.
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_of_drops_the_port() {
        for (addr, host) in [
            ("hub.azure-devices.net:8883", "hub.azure-devices.net"),
            ("127.0.0.1:1883", "127.0.0.1"),
            ("[::1]:8883", "::1"),
            ("hub", "hub"),
        ] {
            assert_eq!(super::host_of(addr), host);
        }
    }
}
