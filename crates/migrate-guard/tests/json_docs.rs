//! Every JSON example in docs/json/migrate-guard.md is a GuardReport, exactly.

#[test]
fn the_documented_report_parses_exactly() {
    for (ty, text) in test_support::docs::json_examples("migrate-guard") {
        assert_eq!(ty, "GuardReport");
        let r: migrate_guard::GuardReport = test_support::docs::parses_exactly(&ty, &text);
        assert_eq!(r.summary_line(), "migrate-guard: outcome=succeeded attempts=2 cut=1 waited_ms=41200 exit=0");
    }
}
