//! Arbitrary operations on a Sparkplug edge node line (writes, connects, losses, device stations
//! off and on, rebirth, next server, primary host STATE): every packet it sends keeps seq and
//! births in step (the checks of crates/core/tests/edge_ops, shared with the property test), and
//! every write completes exactly once.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/edge_ops/mod.rs"]
mod edge_ops;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, ops)) = data.split_first() else {
        return;
    };
    let max = if mode & 2 == 0 { "3" } else { "1000" };
    edge_ops::EdgeRun::new(mode & 1 == 1, max).run(ops);
});
