//! What a test needs besides the binaries under test: programs from Debian, the npm and PyPI
//! packages of `tests/sparkplug`, the shared corpora. The test command (`tests/run.sh`) provides
//! all of them, so a missing one fails the test that needs it, naming it and how to get it; a
//! test never prints SKIPPED and passes (docs/decisions.md, *Tests: a missing tool fails its
//! test*). A tool that the test command does not provide would make its tests
//! `#[ignore = "reason"]` instead, run on purpose with `--ignored`.

use std::path::PathBuf;

use crate::interop_brokers::find_program;

/// Fails the calling test: `problem` says what is missing, `remedy` how to provide it by hand.
#[track_caller]
pub fn missing(problem: &str, remedy: &str) -> ! {
    panic!(
        "{problem}: {remedy}, or run tests/run.sh (the README's test command), which provides \
         everything the tests need"
    )
}

/// Fails the calling test: the program `name` from the Debian package `package` is not
/// installed.
#[track_caller]
pub fn missing_program(name: &str, package: &str) -> ! {
    missing(
        &format!("{name} is not installed"),
        &format!("`apt-get install {package}`"),
    )
}

/// Where the program `name` is (see [`find_program`]); fails the calling test when it is not
/// installed, naming the Debian `package` that has it.
#[track_caller]
pub fn require_program(name: &str, package: &str) -> PathBuf {
    match find_program(name) {
        Some(path) => path,
        None => missing_program(name, package),
    }
}
