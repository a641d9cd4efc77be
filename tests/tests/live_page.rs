//! Issue 11: sim-host's live page (`--http`) in a real browser, Debian's headless chromium
//! driven through the DevTools protocol. A value published to the broker appears in the page
//! without a reload, and a payload that looks like markup shows as text.
//!
//! The browser is started once for this test binary (one test) and killed by its pid at the
//! end. Without chromium the test fails, saying how to install it (`tests/run.sh` does).

use mqtt_line_e2e::browser::Browser;
use mqtt_line_e2e::{missing_program, publish, LineConfig, Mosquitto, SimHost, StationConfig};
use serde_json::Value;

/// The text of a tag's value cell, or null while the row is not there.
fn value_cell(station: &str, tag: &str) -> String {
    format!(
        "(() => {{ const c = document.querySelector('tr[data-station=\"{station}\"][data-tag=\"{tag}\"] td.value'); \
         return c ? c.textContent : null; }})()"
    )
}

#[test]
fn published_values_appear_live_and_markup_stays_text() {
    let browser = Browser::start().unwrap_or_else(|| missing_program("chromium", "chromium"));
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .param("topic_filter", "plant/#")
        .station(StationConfig::new("boiler", "plant/boiler").tag("temperature", "IN_DATA", "Ai"))
        .station(StationConfig::new("pump", "plant/pump").tag("text", "IN_DATA", "TxtI"));
    let mut host = SimHost::start_with(&config.to_toml(), &["--http", "127.0.0.1:0"]);
    host.attach_broker(&broker);
    let address = host.http_address();
    host.wait_connected();

    let mut page = browser.open(&format!("http://{address}/"));
    page.wait_for(
        "the page's snapshot",
        "document.getElementById('stream').dataset.stream",
        |v| v == "live",
    );
    page.wait_for(
        "the line shown as connected",
        "document.getElementById('line-state').textContent",
        |v| v == "connected",
    );
    // Marks this load of the page: a reload would lose it.
    page.eval("window.loadedOnce = 'yes'");
    let before = page.eval(&value_cell("boiler", "temperature"));
    assert_eq!(before, "no value yet", "a tag without a value yet");

    publish(broker.port(), "plant/boiler", b"71.5", 1, false);
    host.expect_value_eq("boiler", "temperature", 71.5);
    page.wait_for(
        "the published temperature in the page",
        &value_cell("boiler", "temperature"),
        |v| v == "71.5",
    );

    // Markup in a payload is text: no element is made of it and no script runs.
    let hostile = "<img src=x onerror=\"window.injected=1\"><b>bold</b>";
    publish(broker.port(), "plant/pump", hostile.as_bytes(), 1, false);
    host.expect_value_eq("pump", "text", hostile);
    page.wait_for(
        "the markup payload as text",
        &value_cell("pump", "text"),
        |v| v == hostile,
    );
    let counts = page
        .eval("[document.querySelectorAll('#tags img, #tags b').length, typeof window.injected]");
    assert_eq!(
        counts,
        serde_json::json!([0, "undefined"]),
        "no markup from the payload"
    );

    // A station's counters follow the messages, still without a reload.
    page.wait_for(
        "boiler's received count",
        "(() => { const r = document.querySelector('#stations tr[data-station=\"boiler\"]'); \
         return r ? r.children[2].textContent : null; })()",
        |v| v == "1",
    );
    assert_eq!(
        page.eval("window.loadedOnce"),
        Value::from("yes"),
        "the page was never reloaded"
    );
    host.quit_ok();
    drop(browser);
}
