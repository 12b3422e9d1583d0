//! docs/json/migrate-restart.md shows what the tool prints: every example parses into its
//! report type and writes back unchanged.

use migrate_restart::report::{CheckReport, MigrateReport, ReleaseReport};
use test_support::docs::{json_examples, parses_exactly};

#[test]
fn every_documented_example_is_a_report() {
    for (ty, text) in json_examples("migrate-restart") {
        match ty.as_str() {
            "MigrateReport" => {
                parses_exactly::<MigrateReport>(&ty, &text);
            }
            "CheckReport" => {
                parses_exactly::<CheckReport>(&ty, &text);
            }
            "ReleaseReport" => {
                parses_exactly::<ReleaseReport>(&ty, &text);
            }
            "PlanReport" => {
                parses_exactly::<migrate_restart::report::PlanReport>(&ty, &text);
            }
            "NoReleaseReport" => {
                parses_exactly::<migrate_restart::report::NoReleaseReport>(&ty, &text);
            }
            other => panic!("docs/json/migrate-restart.md names an unknown type {other}"),
        }
    }
}
