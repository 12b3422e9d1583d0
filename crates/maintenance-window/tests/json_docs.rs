//! docs/json/maintenance-window.md shows what the tool prints: every example parses into its
//! report type and writes back unchanged.

use maintenance_window::report::{PlanReport, RestoreReport, StatusReport, WindowReport};
use test_support::docs::{json_examples, parses_exactly};

#[test]
fn every_documented_example_is_a_report() {
    for (ty, text) in json_examples("maintenance-window") {
        match ty.as_str() {
            "WindowReport" => {
                parses_exactly::<WindowReport>(&ty, &text);
            }
            "PlanReport" => {
                parses_exactly::<PlanReport>(&ty, &text);
            }
            "StatusReport" => {
                parses_exactly::<StatusReport>(&ty, &text);
            }
            "RestoreReport" => {
                parses_exactly::<RestoreReport>(&ty, &text);
            }
            other => panic!("docs/json/maintenance-window.md names an unknown type {other}"),
        }
    }
}
