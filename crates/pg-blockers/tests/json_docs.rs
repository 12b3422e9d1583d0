//! docs/json/pg-blockers.md shows what the tool prints: every example parses into its report
//! type and writes back unchanged.

use pg_blockers::report::{ActionReport, BlockersReport};
use test_support::docs::{json_examples, parses_exactly};

#[test]
fn every_documented_example_is_a_report() {
    for (ty, text) in json_examples("pg-blockers") {
        match ty.as_str() {
            "BlockersReport" => {
                parses_exactly::<BlockersReport>(&ty, &text);
            }
            "ActionReport" => {
                parses_exactly::<ActionReport>(&ty, &text);
            }
            other => panic!("docs/json/pg-blockers.md names an unknown type {other}"),
        }
    }
}
