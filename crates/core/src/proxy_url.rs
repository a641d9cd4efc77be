//! The `proxy` line parameter: `http://[user:pass@]host:port` (HTTP CONNECT) or
//! `socks5://[user:pass@]host:port`. The proxy opens the TCP tunnel to the broker; TLS and
//! WebSocket run inside it, so one parameter serves every transport.
//!
//! The password is a secret: kept in [`Secret`], and left out of every text this module makes
//! ([`ProxyConfig::display`], [`redact`]), so errors and logs can name the proxy safely.

use crate::params::Secret;

/// Which handshake opens the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// HTTP `CONNECT host:port` (RFC 9110 9.3.6), Basic credentials when a user is given.
    HttpConnect,
    /// SOCKS5 (RFC 1928) CONNECT, user name/password authentication (RFC 1929) when given. The
    /// broker's host name is sent as a name, so the proxy resolves it.
    Socks5,
}

/// A parsed `proxy` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    pub kind: ProxyKind,
    /// A name or an address; an IPv6 address without its brackets.
    pub host: String,
    pub port: u16,
    /// Empty: no authentication.
    pub user: String,
    pub password: Secret,
}

impl ProxyConfig {
    /// Reads a `proxy` value. The reason never contains the password.
    pub fn parse(text: &str) -> Result<ProxyConfig, String> {
        let text = text.trim();
        let (kind, rest) = if let Some(rest) = strip_prefix_ci(text, "http://") {
            (ProxyKind::HttpConnect, rest)
        } else if let Some(rest) = strip_prefix_ci(text, "socks5://") {
            (ProxyKind::Socks5, rest)
        } else {
            return Err(
                "expected http://[user:password@]host:port (HTTP CONNECT) or \
                        socks5://[user:password@]host:port"
                    .into(),
            );
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (userinfo, hostport) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (String::new(), String::new()),
            Some(info) => {
                let (u, p) = info.split_once(':').unwrap_or((info, ""));
                let user = percent_decode(u).map_err(|r| format!("the user name {r}"))?;
                let password = percent_decode(p).map_err(|r| format!("the password {r}"))?;
                if user.is_empty() {
                    return Err("the user name before '@' is empty".into());
                }
                (user, password)
            }
        };
        if hostport.contains(['/', '?', '#']) {
            return Err("a proxy address has no path; expected host:port after the scheme".into());
        }
        let (host, port) = split_host_port(hostport)?;
        if kind == ProxyKind::Socks5 && (user.len() > 255 || password.len() > 255) {
            return Err("SOCKS5 user names and passwords are at most 255 bytes".into());
        }
        Ok(ProxyConfig {
            kind,
            host,
            port,
            user,
            password: Secret::new(password),
        })
    }

    /// The proxy as messages name it: scheme, user, host and port, never the password.
    pub fn display(&self) -> String {
        let scheme = match self.kind {
            ProxyKind::HttpConnect => "http",
            ProxyKind::Socks5 => "socks5",
        };
        let user = if self.user.is_empty() {
            String::new()
        } else {
            format!("{}@", self.user)
        };
        format!("{scheme}://{user}{}", host_port(&self.host, self.port))
    }
}

/// `host:port`, with brackets around an IPv6 address.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A `proxy` value as an error message may show it: the password (between the user's ':' and the
/// last '@') replaced by `***`, whether or not the rest of the value could be read.
pub fn redact(text: &str) -> String {
    let start = text.find("://").map_or(0, |i| i + 3);
    let Some(at) = text[start..].rfind('@').map(|i| start + i) else {
        return text.to_string();
    };
    match text[start..at].find(':') {
        Some(colon) => format!("{}***{}", &text[..start + colon + 1], &text[at..]),
        None => text.to_string(),
    }
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn split_host_port(text: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(inner) = text.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or("an IPv6 address in '[' lacks its ']'")?;
        let port = after
            .strip_prefix(':')
            .ok_or("the port is missing; expected host:port")?;
        (host, port)
    } else {
        text.rsplit_once(':')
            .ok_or("the port is missing; expected host:port")?
    };
    if host.is_empty() {
        return Err("the proxy's host is empty".into());
    }
    if host.contains(char::is_whitespace) {
        return Err("the proxy's host contains white space".into());
    }
    if text.starts_with('[') != host.contains(':') {
        return Err("an IPv6 address is written in brackets: [::1]:port".into());
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or("the port is not a number from 1 to 65535")?;
    Ok((host.to_string(), port))
}

/// `%XX` escapes (how a URL carries '@' or ':' in a user name or password).
fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("has a '%' not followed by two hexadecimal digits")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "is not UTF-8 after its %-escapes".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_values_are_read() {
        use ProxyKind::*;
        let rows: &[(&str, ProxyKind, &str, u16, &str, &str)] = &[
            (
                "http://127.0.0.1:3128",
                HttpConnect,
                "127.0.0.1",
                3128,
                "",
                "",
            ),
            (
                "HTTP://proxy.plant:8080/",
                HttpConnect,
                "proxy.plant",
                8080,
                "",
                "",
            ),
            (
                "http://op:s3cr3t@proxy:80",
                HttpConnect,
                "proxy",
                80,
                "op",
                "s3cr3t",
            ),
            ("http://op@proxy:80", HttpConnect, "proxy", 80, "op", ""),
            ("socks5://[::1]:1080", Socks5, "::1", 1080, "", ""),
            ("socks5://a%40b:p%3Aq@h:1", Socks5, "h", 1, "a@b", "p:q"),
            ("socks5://u:p@ss@h:1", Socks5, "h", 1, "u", "p@ss"),
        ];
        for (text, kind, host, port, user, password) in rows {
            let p = ProxyConfig::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                (p.kind, p.host.as_str(), p.port, p.user.as_str()),
                (*kind, *host, *port, *user),
                "{text}"
            );
            assert_eq!(p.password.expose(), *password, "{text}");
            assert!(
                password.is_empty() || !p.display().contains(password),
                "{}",
                p.display()
            );
        }
    }

    #[test]
    fn bad_proxy_values_are_refused_with_the_reason() {
        let rows: &[(&str, &str)] = &[
            ("proxy:3128", "expected http://"),
            ("https://proxy:3128", "expected http://"),
            ("socks4://proxy:1080", "expected http://"),
            ("http://proxy", "port is missing"),
            ("http://proxy:0", "1 to 65535"),
            ("http://proxy:70000", "1 to 65535"),
            ("http://:3128", "host is empty"),
            ("http://proxy:3128/path", "no path"),
            ("http://::1:3128", "brackets"),
            ("http://[::1:3128", "lacks its ']'"),
            ("http://:pw@proxy:1", "user name before '@' is empty"),
            ("http://u:p%zz@proxy:1", "the password has a '%'"),
        ];
        for (text, want) in rows {
            let reason = ProxyConfig::parse(text).expect_err(text);
            assert!(reason.contains(want), "{text}: {reason}");
        }
        let long = format!("socks5://{}:p@h:1", "u".repeat(256));
        assert!(ProxyConfig::parse(&long).is_err());
    }

    #[test]
    fn the_password_is_never_shown() {
        let rows: &[(&str, &str)] = &[
            ("http://op:s3cr3t@proxy:80", "http://op:***@proxy:80"),
            ("socks5://u:p@ss@h", "socks5://u:***@h"),
            ("http://op@proxy:80", "http://op@proxy:80"),
            ("http://proxy:80", "http://proxy:80"),
            ("op:s3cr3t@proxy", "op:***@proxy"),
        ];
        for (text, want) in rows {
            assert_eq!(redact(text), *want, "{text}");
        }
        let p = ProxyConfig::parse("http://op:s3cr3t@proxy:80").unwrap();
        assert_eq!(p.display(), "http://op@proxy:80");
        assert!(!format!("{p:?}").contains("s3cr3t"));
    }
}
