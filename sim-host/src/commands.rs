//! Commands read from stdin, one per line, on their own thread.

use std::io::{BufRead, Read};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread;

use mqtt_line_abi::{MQL_STATION_CMD_OFF, MQL_STATION_CMD_ON, MQL_STATION_CMD_SIMULATE};

use crate::output::stderr_line;
use crate::wake::Waker;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `write STATION TAG VALUE`: VALUE is the rest of the line, passed as text (empty when
    /// nothing follows TAG).
    Write {
        station: String,
        tag: String,
        value: String,
    },
    /// `station STATION on|off|simulate`: `action` is an `MQL_STATION_CMD_*`.
    Station {
        station: String,
        action: u32,
    },
    /// `set PARAM VALUE`: changes one line parameter while running (`line_set_parameters`);
    /// VALUE is the rest of the line.
    Set {
        param: String,
        value: String,
    },
    /// `status`: the line's and every station's state.
    Status,
    /// `values`: every tag's current value.
    Values,
    /// `stats`: the line's and every station's counters.
    Stats,
    /// `help`: the commands.
    Help,
    Quit,
    /// A line that is not a command: the message to report (the main loop prints it, as an
    /// `ERROR` line on stderr or as a log event).
    Invalid(String),
}

const USAGE: &str = "commands: write STATION TAG VALUE | station STATION on|off|simulate | \
                     set PARAM VALUE | status | values | stats | help | quit";

/// What `help` prints: one command a line with what it does.
pub const HELP: &[(&str, &str)] = &[
    (
        "write STATION TAG VALUE",
        "write VALUE (the rest of the line) to a tag",
    ),
    ("station STATION on|off|simulate", "switch a station"),
    (
        "set PARAM VALUE",
        "change a line parameter; the line reconnects",
    ),
    ("status", "the line's and every station's state"),
    ("values", "every tag's current value, validity and time"),
    ("stats", "the line's and every station's counters"),
    ("help", "this list"),
    ("quit", "disconnect cleanly and exit"),
];

/// A command that takes no argument: the word alone (surrounding blanks allowed).
fn bare(rest: Option<&str>) -> bool {
    rest.is_none_or(|r| r.trim().is_empty())
}

/// Splits off the first word (separated by spaces or tabs) and the rest after one separator.
fn split_word(s: &str) -> (&str, Option<&str>) {
    let s = s.trim_start_matches([' ', '\t']);
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    }
}

/// Parses one line (without its line ending). Blank lines and `#` comments give `None`.
pub fn parse(line: &str) -> Result<Option<Command>, String> {
    let (word, rest) = split_word(line);
    if word.is_empty() || word.starts_with('#') {
        return Ok(None);
    }
    let command = match word.to_ascii_lowercase().as_str() {
        "write" => {
            let (station, rest) = split_word(rest.unwrap_or(""));
            let (tag, value) = split_word(rest.unwrap_or(""));
            if station.is_empty() || tag.is_empty() {
                return Err("usage: write STATION TAG VALUE".into());
            }
            // Nothing after the tag name writes the empty text, as with one separator after it.
            Command::Write {
                station: station.to_string(),
                tag: tag.to_string(),
                value: value.unwrap_or("").to_string(),
            }
        }
        "station" => {
            let (station, rest) = split_word(rest.unwrap_or(""));
            let action = rest.unwrap_or("").trim();
            let action = match action.to_ascii_lowercase().as_str() {
                "on" => MQL_STATION_CMD_ON,
                "off" => MQL_STATION_CMD_OFF,
                "simulate" => MQL_STATION_CMD_SIMULATE,
                _ => return Err("usage: station STATION on|off|simulate".into()),
            };
            if station.is_empty() {
                return Err("usage: station STATION on|off|simulate".into());
            }
            Command::Station {
                station: station.to_string(),
                action,
            }
        }
        "set" => {
            let (param, value) = split_word(rest.unwrap_or(""));
            match (param.is_empty(), value) {
                (false, Some(value)) => Command::Set {
                    param: param.to_string(),
                    value: value.to_string(),
                },
                _ => return Err("usage: set PARAM VALUE".into()),
            }
        }
        "quit" if bare(rest) => Command::Quit,
        "status" if bare(rest) => Command::Status,
        "values" if bare(rest) => Command::Values,
        "stats" if bare(rest) => Command::Stats,
        "help" if bare(rest) => Command::Help,
        _ => return Err(format!("unknown command '{}' ({USAGE})", line.trim())),
    };
    Ok(Some(command))
}

/// Strips one line ending (`\n` or `\r\n`); other trailing whitespace belongs to a written value.
fn strip_line_end(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}

/// Reads commands from `input` until it ends, sending each and waking the main loop. Bad lines
/// are sent as [`Command::Invalid`] for the main loop to report; the end of input does not end
/// the run.
pub fn read_commands(input: impl Read, tx: Sender<Command>, waker: Arc<Waker>) {
    let mut reader = std::io::BufReader::new(input);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                stderr_line(&format!("ERROR reading stdin: {e}"));
                return;
            }
        }
        let text = String::from_utf8_lossy(&buf);
        let cmd = match parse(strip_line_end(&text)) {
            Ok(Some(cmd)) => cmd,
            Ok(None) => continue,
            Err(e) => Command::Invalid(e),
        };
        if tx.send(cmd).is_err() {
            return; // the main loop has finished
        }
        waker.wake();
    }
}

/// Starts the stdin reader thread. It is never joined: it may stay blocked in `read`.
pub fn spawn_stdin_reader(tx: Sender<Command>, waker: Arc<Waker>) -> std::io::Result<()> {
    thread::Builder::new()
        .name("stdin".into())
        .spawn(move || read_commands(std::io::stdin(), tx, waker))
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(station: &str, tag: &str, value: &str) -> Command {
        Command::Write {
            station: station.into(),
            tag: tag.into(),
            value: value.into(),
        }
    }

    #[test]
    fn commands_parse() {
        let cases = [
            (
                "write st tag some value with spaces",
                Some(write("st", "tag", "some value with spaces")),
            ),
            (
                "write st tag  two leading spaces ",
                Some(write("st", "tag", " two leading spaces ")),
            ),
            ("write st tag ", Some(write("st", "tag", ""))),
            ("write st tag", Some(write("st", "tag", ""))),
            (
                "WRITE battery cmd_value 42",
                Some(write("battery", "cmd_value", "42")),
            ),
            ("  write  st\ttag x", Some(write("st", "tag", "x"))),
            (
                "station battery off",
                Some(Command::Station {
                    station: "battery".into(),
                    action: MQL_STATION_CMD_OFF,
                }),
            ),
            (
                "station battery Simulate",
                Some(Command::Station {
                    station: "battery".into(),
                    action: MQL_STATION_CMD_SIMULATE,
                }),
            ),
            (
                "station battery on",
                Some(Command::Station {
                    station: "battery".into(),
                    action: MQL_STATION_CMD_ON,
                }),
            ),
            (
                "set topic_filter b/#",
                Some(Command::Set {
                    param: "topic_filter".into(),
                    value: "b/#".into(),
                }),
            ),
            (
                "SET will_message gone away ",
                Some(Command::Set {
                    param: "will_message".into(),
                    value: "gone away ".into(),
                }),
            ),
            ("quit", Some(Command::Quit)),
            ("  quit  ", Some(Command::Quit)),
            ("status", Some(Command::Status)),
            ("VALUES ", Some(Command::Values)),
            ("\tstats", Some(Command::Stats)),
            ("help", Some(Command::Help)),
            ("", None),
            ("   ", None),
            ("# a comment", None),
        ];
        for (line, expected) in cases {
            assert_eq!(parse(line), Ok(expected), "{line:?}");
        }
    }

    #[test]
    fn bad_commands_are_errors() {
        for line in [
            "write",
            "write st",
            "station battery",
            "station battery maybe",
            "station",
            "set",
            "set topic_filter",
            "quit now",
            "status a",
            "values now",
            "stats all",
            "help me",
            "frobnicate",
        ] {
            assert!(parse(line).is_err(), "{line:?}");
        }
    }

    #[test]
    fn reader_sends_commands_and_skips_bad_lines() {
        let input = b"write st tag a b \r\nbogus\nquit\n" as &[u8];
        let (tx, rx) = std::sync::mpsc::channel();
        read_commands(input, tx, Arc::new(Waker::default()));
        let got: Vec<Command> = rx.try_iter().collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0], write("st", "tag", "a b "));
        assert!(
            matches!(&got[1], Command::Invalid(m) if m.contains("bogus")),
            "{got:?}"
        );
        assert_eq!(got[2], Command::Quit);
    }
}
