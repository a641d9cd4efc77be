//! The tunnel through the line's `proxy`: HTTP CONNECT or SOCKS5, opened before TLS and the
//! WebSocket handshake, which then run inside it.
//!
//! The requests and the reading of the proxy's answers are pure functions (tested below, table
//! by table); [`open`] only moves their bytes. The answer is read no further than its end, so no
//! byte of the broker's is taken by the handshake. Errors name the proxy without its password and
//! quote its answer escaped.

use mqtt_line_core::{escape, host_port, ProxyConfig, ProxyKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An HTTP proxy's answer head is a few hundred bytes; more is not an HTTP proxy.
const HTTP_HEAD_MAX: usize = 8 * 1024;

/// Opens a TCP connection to the proxy and asks it for a tunnel to `host:port`.
pub(crate) async fn open(proxy: &ProxyConfig, host: &str, port: u16) -> Result<TcpStream, String> {
    let name = proxy.display();
    let target = host_port(host, port);
    let mut tcp = TcpStream::connect((proxy.host.as_str(), proxy.port))
        .await
        .map_err(|e| format!("cannot connect to proxy {name}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let result = match proxy.kind {
        ProxyKind::HttpConnect => http_connect(&mut tcp, proxy, &target).await,
        ProxyKind::Socks5 => socks5_connect(&mut tcp, proxy, host, port).await,
    };
    result.map_err(|e| format!("proxy {name} did not open a tunnel to {target}: {e}"))?;
    Ok(tcp)
}

async fn http_connect(
    tcp: &mut TcpStream,
    proxy: &ProxyConfig,
    target: &str,
) -> Result<(), String> {
    let credentials =
        (!proxy.user.is_empty()).then(|| (proxy.user.as_str(), proxy.password.expose()));
    tcp.write_all(http_request(target, credentials).as_bytes())
        .await
        .map_err(|e| format!("cannot send CONNECT: {e}"))?;
    // Byte by byte up to the blank line: the bytes after it are the broker's.
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= HTTP_HEAD_MAX {
            return Err(format!(
                "its answer has no end within {HTTP_HEAD_MAX} bytes: {}",
                first_line(&head)
            ));
        }
        let byte = tcp.read_u8().await.map_err(|e| {
            if head.is_empty() {
                format!("it closed the connection without an answer ({e})")
            } else {
                format!("its answer broke off ({e}): {}", first_line(&head))
            }
        })?;
        head.push(byte);
    }
    check_http_answer(&head)
}

/// `CONNECT` for `target` (`host:port`), with Basic credentials when a user is given.
fn http_request(target: &str, credentials: Option<(&str, &str)>) -> String {
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some((user, password)) = credentials {
        let token = base64(format!("{user}:{password}").as_bytes());
        req.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    req.push_str("\r\n");
    req
}

/// A 2xx status opens the tunnel; anything else is the refusal, its status line quoted.
fn check_http_answer(head: &[u8]) -> Result<(), String> {
    let line = first_line(head);
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/")
        || status.len() != 3
        || !status.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("its answer is not HTTP: '{line}'"));
    }
    if status.starts_with('2') {
        Ok(())
    } else if status == "407" {
        Err(format!(
            "it answered '{line}' (it wants credentials: user and password in the proxy \
             parameter, http://user:password@host:port)"
        ))
    } else {
        Err(format!("it answered '{line}'"))
    }
}

/// The first line of an answer, escaped for a log line.
fn first_line(head: &[u8]) -> String {
    let text = String::from_utf8_lossy(head);
    let line = text.split("\r\n").next().unwrap_or_default();
    escape(line).into_owned()
}

async fn socks5_connect(
    tcp: &mut TcpStream,
    proxy: &ProxyConfig,
    host: &str,
    port: u16,
) -> Result<(), String> {
    let with_auth = !proxy.user.is_empty();
    let io = |e: std::io::Error| format!("the SOCKS5 exchange broke off: {e}");
    tcp.write_all(&socks_greeting(with_auth))
        .await
        .map_err(io)?;
    let mut choice = [0u8; 2];
    tcp.read_exact(&mut choice).await.map_err(io)?;
    if check_socks_method(choice, with_auth)? == SOCKS_USER_PASSWORD {
        let request = socks_auth_request(&proxy.user, proxy.password.expose());
        tcp.write_all(&request).await.map_err(io)?;
        let mut status = [0u8; 2];
        tcp.read_exact(&mut status).await.map_err(io)?;
        check_socks_auth(status)?;
    }
    tcp.write_all(&socks_connect_request(host, port))
        .await
        .map_err(io)?;
    let mut head = [0u8; 5];
    tcp.read_exact(&mut head).await.map_err(io)?;
    let rest = socks_reply_rest(head)?;
    // The bound address and port the proxy reports: not needed, but not the broker's bytes.
    let mut skip = vec![0u8; rest];
    tcp.read_exact(&mut skip).await.map_err(io)?;
    Ok(())
}

const SOCKS_VERSION: u8 = 5;
const SOCKS_NO_AUTH: u8 = 0;
const SOCKS_USER_PASSWORD: u8 = 2;

/// The methods offered: none, or user name/password as well when a user is configured.
fn socks_greeting(with_auth: bool) -> Vec<u8> {
    if with_auth {
        vec![SOCKS_VERSION, 2, SOCKS_NO_AUTH, SOCKS_USER_PASSWORD]
    } else {
        vec![SOCKS_VERSION, 1, SOCKS_NO_AUTH]
    }
}

/// The method the proxy chose, if it is one that was offered.
fn check_socks_method(reply: [u8; 2], with_auth: bool) -> Result<u8, String> {
    match reply {
        [SOCKS_VERSION, SOCKS_NO_AUTH] => Ok(SOCKS_NO_AUTH),
        [SOCKS_VERSION, SOCKS_USER_PASSWORD] if with_auth => Ok(SOCKS_USER_PASSWORD),
        [SOCKS_VERSION, 0xff] if with_auth => Err(
            "it accepts none of the offered methods (no authentication, user name/password)".into(),
        ),
        [SOCKS_VERSION, 0xff] => Err(
            "it accepts no connection without authentication (give user:password@ in the \
             proxy parameter)"
                .into(),
        ),
        [SOCKS_VERSION, method] => Err(format!("it chose method {method}, which was not offered")),
        [version, _] => Err(format!("it is not a SOCKS5 proxy (version byte {version})")),
    }
}

/// RFC 1929: version 1, then the user name and the password, each with its length byte (both are
/// at most 255 bytes, checked with the configuration).
fn socks_auth_request(user: &str, password: &str) -> Vec<u8> {
    let mut req = vec![1, user.len() as u8];
    req.extend_from_slice(user.as_bytes());
    req.push(password.len() as u8);
    req.extend_from_slice(password.as_bytes());
    req
}

fn check_socks_auth(status: [u8; 2]) -> Result<(), String> {
    match status {
        [1, 0] => Ok(()),
        [_, code] => Err(format!(
            "it refused the user name and password (status {code})"
        )),
    }
}

/// CONNECT to an IPv4 or IPv6 address as such, and to a name as a name (the proxy resolves it).
fn socks_connect_request(host: &str, port: u16) -> Vec<u8> {
    let mut req = vec![SOCKS_VERSION, 1, 0];
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => {
            req.push(1);
            req.extend_from_slice(&ip.octets());
        }
        Ok(std::net::IpAddr::V6(ip)) => {
            req.push(4);
            req.extend_from_slice(&ip.octets());
        }
        Err(_) => {
            // Host names are at most 253 bytes; the configuration refuses white space only, so
            // a longer one is cut and then not found by the proxy.
            let name = &host.as_bytes()[..host.len().min(255)];
            req.push(3);
            req.push(name.len() as u8);
            req.extend_from_slice(name);
        }
    }
    req.extend_from_slice(&port.to_be_bytes());
    req
}

/// Checks the first five bytes of the CONNECT reply and says how many follow (the rest of the
/// bound address and its port).
fn socks_reply_rest(head: [u8; 5]) -> Result<usize, String> {
    let [version, code, _, atyp, first] = head;
    if version != SOCKS_VERSION {
        return Err(format!("it is not a SOCKS5 proxy (version byte {version})"));
    }
    if code != 0 {
        return Err(format!("it answered {code} ({})", socks_reply_name(code)));
    }
    match atyp {
        1 => Ok(3 + 2),
        4 => Ok(15 + 2),
        3 => Ok(usize::from(first) + 2),
        other => Err(format!("its answer has an unknown address type {other}")),
    }
}

/// RFC 1928's reply codes.
fn socks_reply_name(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unassigned reply code",
    }
}

/// Standard base64 with padding (RFC 4648), for the Basic credentials.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_of_rfc_4648_vectors() {
        let rows = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (text, want) in rows {
            assert_eq!(base64(text.as_bytes()), want, "{text}");
        }
    }

    #[test]
    fn http_connect_requests() {
        type Credentials<'a> = Option<(&'a str, &'a str)>;
        let rows: &[(&str, Credentials, &str)] = &[
            (
                "127.0.0.1:1883",
                None,
                "CONNECT 127.0.0.1:1883 HTTP/1.1\r\nHost: 127.0.0.1:1883\r\n\r\n",
            ),
            (
                "[::1]:8883",
                Some(("Aladdin", "open sesame")),
                "CONNECT [::1]:8883 HTTP/1.1\r\nHost: [::1]:8883\r\n\
                 Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n",
            ),
        ];
        for (target, credentials, want) in rows {
            assert_eq!(http_request(target, *credentials), *want);
        }
        assert_eq!(host_port("::1", 8883), "[::1]:8883");
    }

    #[test]
    fn http_answers() {
        let rows: &[(&[u8], Result<(), &str>)] = &[
            (b"HTTP/1.1 200 Connection established\r\n\r\n", Ok(())),
            (b"HTTP/1.0 200 OK\r\nProxy-agent: x\r\n\r\n", Ok(())),
            (
                b"HTTP/1.0 403 Access violation\r\n\r\n",
                Err("answered 'HTTP/1.0 403 Access violation'"),
            ),
            (
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
                Err("wants credentials"),
            ),
            (
                b"HTTP/1.1 502 Bad\x1b[2J\r\n\r\n",
                Err("'HTTP/1.1 502 Bad\\u{1b}[2J'"),
            ),
            (
                b"SSH-2.0-OpenSSH\r\n\r\n",
                Err("not HTTP: 'SSH-2.0-OpenSSH'"),
            ),
            (b"HTTP/1.1 20 x\r\n\r\n", Err("not HTTP")),
        ];
        for (head, want) in rows {
            let got = check_http_answer(head);
            match want {
                Ok(()) => assert_eq!(got, Ok(()), "{head:?}"),
                Err(part) => {
                    let e = got.expect_err(part);
                    assert!(e.contains(part), "{head:?}: {e}");
                }
            }
        }
    }

    #[test]
    fn socks_method_choices() {
        let rows: &[([u8; 2], bool, Result<u8, &str>)] = &[
            ([5, 0], false, Ok(0)),
            ([5, 0], true, Ok(0)),
            ([5, 2], true, Ok(2)),
            ([5, 2], false, Err("method 2, which was not offered")),
            ([5, 0xff], false, Err("without authentication")),
            ([5, 0xff], true, Err("none of the offered methods")),
            ([4, 0], false, Err("not a SOCKS5 proxy (version byte 4)")),
            ([b'H', b'T'], false, Err("version byte 72")),
        ];
        for (reply, auth, want) in rows {
            let got = check_socks_method(*reply, *auth);
            match want {
                Ok(m) => assert_eq!(got, Ok(*m), "{reply:?}"),
                Err(part) => {
                    let e = got.expect_err(part);
                    assert!(e.contains(part), "{reply:?}: {e}");
                }
            }
        }
        assert_eq!(socks_greeting(false), [5, 1, 0]);
        assert_eq!(socks_greeting(true), [5, 2, 0, 2]);
        assert_eq!(socks_auth_request("op", "pw!"), b"\x01\x02op\x03pw!");
        assert_eq!(check_socks_auth([1, 0]), Ok(()));
        assert!(check_socks_auth([1, 1]).is_err_and(|e| e.contains("status 1")));
    }

    #[test]
    fn socks_connect_requests() {
        let rows: &[(&str, u16, &[u8])] = &[
            ("127.0.0.1", 1883, &[5, 1, 0, 1, 127, 0, 0, 1, 0x07, 0x5b]),
            (
                "::1",
                8883,
                &[
                    5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x22, 0xb3,
                ],
            ),
            (
                "broker.plant",
                80,
                &[
                    5, 1, 0, 3, 12, b'b', b'r', b'o', b'k', b'e', b'r', b'.', b'p', b'l', b'a',
                    b'n', b't', 0, 80,
                ],
            ),
        ];
        for (host, port, want) in rows {
            assert_eq!(socks_connect_request(host, *port), *want, "{host}");
        }
    }

    #[test]
    fn socks_replies() {
        let rows: &[([u8; 5], Result<usize, &str>)] = &[
            ([5, 0, 0, 1, 127], Ok(5)),
            ([5, 0, 0, 4, 0], Ok(17)),
            ([5, 0, 0, 3, 9], Ok(11)),
            (
                [5, 2, 0, 1, 0],
                Err("answered 2 (connection not allowed by ruleset)"),
            ),
            ([5, 5, 0, 1, 0], Err("answered 5 (connection refused)")),
            ([5, 42, 0, 1, 0], Err("answered 42 (unassigned reply code)")),
            ([5, 0, 0, 9, 0], Err("unknown address type 9")),
            ([0, 91, 0, 0, 0], Err("version byte 0")),
        ];
        for (head, want) in rows {
            let got = socks_reply_rest(*head);
            match want {
                Ok(n) => assert_eq!(got, Ok(*n), "{head:?}"),
                Err(part) => {
                    let e = got.expect_err(part);
                    assert!(e.contains(part), "{head:?}: {e}");
                }
            }
        }
    }
}
