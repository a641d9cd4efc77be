//! Headless chromium driven through the Chrome DevTools Protocol over a WebSocket, for the test
//! of sim-host's live page.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::http_client::http_get;
use crate::interop_brokers::find_program;
use crate::process::{collect_opt, kill_and_reap, Collected};
use crate::TIMEOUT;

/// Debian's chromium, or None when it is not installed.
pub fn chromium_path() -> Option<PathBuf> {
    ["chromium", "chromium-browser"]
        .iter()
        .find_map(|name| find_program(name))
}

/// A headless chromium with its own profile; killed (its process group, by pid) on drop.
pub struct Browser {
    child: Child,
    devtools: String,
    stderr: Collected,
    _profile: tempfile::TempDir,
}

fn wait_for_file(path: &Path, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            // Written whole once the port is open: the port, then the browser's path.
            if text.ends_with('\n') || text.lines().count() >= 2 {
                return Some(text);
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Browser {
    /// Starts chromium headless on a free DevTools port (loopback only). None when chromium is
    /// not installed; panics when it does not start.
    pub fn start() -> Option<Browser> {
        let program = chromium_path()?;
        let profile = tempfile::Builder::new()
            .prefix("mqtt-line-chromium-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let mut cmd = Command::new(&program);
        cmd.args([
            "--headless=new",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        // chromium refuses to run as root inside its sandbox.
        if is_root() {
            cmd.arg("--no-sandbox");
        }
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let stderr = collect_opt(child.stderr.take());
        let port_file = profile.path().join("DevToolsActivePort");
        let Some(text) = wait_for_file(&port_file, TIMEOUT) else {
            kill_and_reap(&mut child);
            panic!(
                "chromium did not open its DevTools port within {TIMEOUT:?}\n-- stderr --\n{}",
                stderr.text()
            );
        };
        let port = text.lines().next().unwrap_or("").trim().to_string();
        Some(Browser {
            child,
            devtools: format!("127.0.0.1:{port}"),
            stderr,
            _profile: profile,
        })
    }

    /// What chromium wrote on stderr.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// The browser's first page, connected and navigated to `url`.
    pub fn open(&self, url: &str) -> Page {
        let list = http_get(&self.devtools, "/json/list").json();
        let ws_url = list
            .as_array()
            .and_then(|targets| {
                targets
                    .iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            })
            .unwrap_or_else(|| panic!("no page target in {list}"))
            .to_string();
        let (socket, _) = tungstenite::connect(&ws_url)
            .unwrap_or_else(|e| panic!("cannot open the DevTools socket {ws_url}: {e}"));
        if let MaybeTlsStream::Plain(s) = socket.get_ref() {
            let _ = s.set_read_timeout(Some(TIMEOUT));
        }
        let mut page = Page { socket, next_id: 1 };
        page.call("Page.enable", json!({}));
        page.navigate(url);
        page
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromium's helpers share its process group (its id is chromium's pid): all of them go.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        kill_and_reap(&mut self.child);
    }
}

/// One page of the browser.
pub struct Page {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Page {
    /// Calls a DevTools method and returns its `result`; events in between are skipped.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({ "id": id, "method": method, "params": params }).to_string();
        self.socket
            .send(Message::text(request))
            .unwrap_or_else(|e| panic!("DevTools {method}: cannot send: {e}"));
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if Instant::now() >= deadline {
                panic!("DevTools {method}: no answer within {TIMEOUT:?}");
            }
            let message = self
                .socket
                .read()
                .unwrap_or_else(|e| panic!("DevTools {method}: cannot read: {e}"));
            let Message::Text(text) = message else {
                continue;
            };
            let reply: Value = serde_json::from_str(text.as_str())
                .unwrap_or_else(|e| panic!("DevTools {method}: not JSON ({e}): {text}"));
            if reply["id"] != id {
                continue;
            }
            if let Some(error) = reply.get("error") {
                panic!("DevTools {method} failed: {error}");
            }
            return reply["result"].clone();
        }
    }

    /// Loads `url` (without waiting for it to finish; use [`Page::wait_for`]).
    pub fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }));
    }

    /// The value of a JavaScript expression in the page (by value); panics on an exception.
    pub fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression)
            .unwrap_or_else(|exception| panic!("{expression}: {exception}"))
    }

    /// The value of a JavaScript expression, or the exception it threw.
    pub fn try_eval(&mut self, expression: &str) -> Result<Value, Value> {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        match result.get("exceptionDetails") {
            Some(exception) => Err(exception.clone()),
            None => Ok(result["result"]["value"].clone()),
        }
    }

    /// Polls `expression` until it gives a value that `accept` takes, at most [`TIMEOUT`];
    /// returns that value, or panics with the last one seen. An exception (the page is still
    /// loading, say) counts as "not yet".
    pub fn wait_for(
        &mut self,
        what: &str,
        expression: &str,
        accept: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let value = self.try_eval(expression).unwrap_or_else(|e| e);
            if accept(&value) {
                return value;
            }
            if Instant::now() >= deadline {
                let body = self
                    .try_eval("document.body ? document.body.innerText : ''")
                    .unwrap_or_default();
                panic!(
                    "timed out after {TIMEOUT:?} waiting for {what}: `{expression}` gave {value}\n\
                     -- page text --\n{}",
                    body.as_str().unwrap_or("")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
