//! docs/json/safe-ps-kill.md shows what the tool prints: every example parses into the report
//! type and writes back unchanged.

use safe_ps_kill::report::KillReport;
use test_support::docs::{json_examples, parses_exactly};

#[test]
fn every_documented_example_is_a_kill_report() {
    for (ty, text) in json_examples("safe-ps-kill") {
        match ty.as_str() {
            "KillReport" => {
                parses_exactly::<KillReport>(&ty, &text);
            }
            other => panic!("docs/json/safe-ps-kill.md names an unknown type {other}"),
        }
    }
}
