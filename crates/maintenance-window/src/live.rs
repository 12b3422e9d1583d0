//! The app's live state, read from the platform: a window's journal lives only on the machine
//! that opened it, so `status`, `restore` and a new window also look at what the app is doing
//! now (maintenance flag, process types at 0) to see a window opened elsewhere.

use heroku_api::{Client, Formation};
use serde::{Deserialize, Serialize};

use crate::journal::{Journal, Scaled};

/// What the platform says now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Live {
    /// The maintenance flag.
    pub maintenance: bool,
    /// Process types other than web (and release, which is always 0: its dyno runs only during a
    /// release phase) whose quantity is 0, sorted.
    pub types_at_zero: Vec<String>,
    /// Every process type with its quantity, sorted by type.
    pub quantities: Vec<(String, u32)>,
    /// Each process type's dyno size (to check a quantity against the platform's limits).
    #[serde(skip)]
    pub sizes: Vec<(String, String)>,
    /// A Fir app (its limits differ from Cedar's).
    #[serde(skip)]
    pub fir: bool,
}

impl Live {
    /// Reads the flag and the formation at once.
    pub fn read(client: &Client, app: &str) -> anyhow::Result<Live> {
        let (info, formation) = std::thread::scope(|s| {
            let info = s.spawn(|| client.app_info(app));
            (cli_kit::join(info), client.formation(app))
        });
        let info = info?;
        Ok(Live { fir: info.platform().is_fir(), ..Live::of(info.maintenance, &formation?) })
    }

    /// From a flag and a formation already read.
    pub fn of(maintenance: bool, formation: &[Formation]) -> Live {
        let mut quantities: Vec<(String, u32)> =
            formation.iter().map(|f| (f.process_type.clone(), f.quantity)).collect();
        quantities.sort();
        let types_at_zero = quantities
            .iter()
            .filter(|(t, q)| t != "web" && t != "release" && *q == 0)
            .map(|(t, _)| t.clone())
            .collect();
        let sizes = formation.iter().map(|f| (f.process_type.clone(), f.size.clone())).collect();
        Live { maintenance, types_at_zero, quantities, sizes, fir: false }
    }

    /// The most dynos the platform runs of `process_type` by default (Dev Center, "Dyno
    /// Scaling and Process Limits"): on Cedar one per type on Eco and Basic, ten on Performance,
    /// Private and Shield, and 100 dynos across the app; on Fir 255 per type and per app.
    /// Raised limits exist (by request): above these the tool refuses and says so.
    fn default_limit(&self, process_type: &str) -> (u32, &'static str) {
        if self.fir {
            return (255, "255 per process type on Fir");
        }
        let size = self.sizes.iter().find(|(t, _)| t == process_type).map(|(_, s)| s.to_ascii_lowercase());
        match size.as_deref().unwrap_or("") {
            s if s.starts_with("eco") || s.starts_with("basic") || s == "free" || s == "hobby" => {
                (1, "one per process type on Eco and Basic dynos")
            }
            s if s.starts_with("performance") || s.starts_with("private") || s.starts_with("shield") => {
                (10, "10 per process type on Performance, Private and Shield dynos")
            }
            _ => (100, "100 dynos per app on Cedar"),
        }
    }

    /// In maintenance with types at 0: what an unclosed window leaves behind.
    pub fn looks_like_a_window(&self) -> bool {
        self.maintenance && !self.types_at_zero.is_empty()
    }

    /// The plain sentence for a live window with no journal on this machine.
    pub fn unjournaled(&self, app: &str) -> String {
        let zero = match self.types_at_zero.as_slice() {
            [] => String::new(),
            [one] => format!(" and {one} is at 0"),
            many => format!(" and {} are at 0", many.join(", ")),
        };
        format!(
            "{app} is in maintenance{zero}, but no window journal is on this machine: a window opened elsewhere may not have closed"
        )
    }

    /// The process type names, for checking `--scale`.
    pub fn has_type(&self, process_type: &str) -> bool {
        self.quantities.iter().any(|(t, _)| t == process_type)
    }
}

/// The one command that puts back what `j` recorded, from any machine: it carries the values,
/// not a path to the journal.
pub fn restore_command(j: &Journal) -> String {
    let mut line = format!(
        "maintenance-window restore -a {} --maintenance {}",
        j.app,
        if j.maintenance_before { "on" } else { "off" }
    );
    if !j.scaled.is_empty() {
        let scale: Vec<String> = j.scaled.iter().map(|s| format!("{}={}", s.process_type, s.quantity_before)).collect();
        line.push_str(&format!(" --scale {}", scale.join(",")));
    }
    line.push_str(&format!(" --confirm {}", j.app));
    cli_kit::invocation::as_invoked(&line).into_owned()
}

/// Parses `--scale worker=3,clock=1`, checked against the app's live types.
pub fn parse_scale(values: &[String], live: &Live) -> anyhow::Result<Vec<Scaled>> {
    let mut scaled = Vec::new();
    for v in values {
        let (t, q) = v.split_once('=').ok_or_else(|| {
            cli_kit::usage(format!("--scale {v}: expected TYPE=N, e.g. worker=3; nothing was changed"))
        })?;
        let quantity: u32 = q.trim().parse().map_err(|_| {
            cli_kit::usage(format!("--scale {v}: `{q}` is not a quantity (a whole number ≥ 0); nothing was changed"))
        })?;
        if scaled.iter().any(|s: &Scaled| s.process_type == t) {
            return Err(cli_kit::usage(format!(
                "--scale: `{t}` is given twice; give each process type once (e.g. {t}={q}); nothing was changed"
            )));
        }
        if !live.has_type(t) {
            let known: Vec<&str> = live.quantities.iter().map(|(t, _)| t.as_str()).collect();
            return Err(cli_kit::usage(format!(
                "--scale: unknown process type `{t}`; this app has: {}; nothing was changed",
                known.join(", ")
            )));
        }
        let (limit, why) = live.default_limit(t);
        if quantity > limit {
            return Err(cli_kit::usage(format!(
                "--scale {t}={quantity}: more than the platform runs ({why}); put back the quantities from before the window, as its restore command printed them (heroku ps:scale for an app with raised limits); nothing was changed"
            )));
        }
        scaled.push(Scaled { process_type: t.to_string(), quantity_before: quantity });
    }
    scaled.sort_by(|a, b| a.process_type.cmp(&b.process_type));
    // The app's total: the types given at their new quantities, the others as they are now.
    let total: u32 = live
        .quantities
        .iter()
        .map(|(t, q)| scaled.iter().find(|s| &s.process_type == t).map_or(*q, |s| s.quantity_before))
        .sum();
    let app_limit = if live.fir { 255 } else { 100 };
    if total > app_limit {
        return Err(cli_kit::usage(format!(
            "--scale: {total} dynos in all, more than the platform runs for one app ({app_limit} on {}); put back the quantities from before the window, as its restore command printed them; nothing was changed",
            if live.fir { "Fir" } else { "Cedar" }
        )));
    }
    Ok(scaled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(maintenance: bool, q: &[(&str, u32)]) -> Live {
        let quantities: Vec<(String, u32)> = q.iter().map(|(t, n)| (t.to_string(), *n)).collect();
        let types_at_zero = quantities.iter().filter(|(t, n)| t != "web" && *n == 0).map(|(t, _)| t.clone()).collect();
        Live { maintenance, types_at_zero, quantities, sizes: Vec::new(), fir: false }
    }

    #[test]
    fn of_sorts_and_finds_the_types_at_zero() {
        let f = |t: &str, q: u32| -> Formation {
            serde_json::from_value(serde_json::json!({
                "id": "01234567-89ab-cdef-0123-456789abcdef", "type": t, "quantity": q, "size": "standard-1X",
                "command": "x", "app": {"id": "01234567-89ab-cdef-0123-456789abcdef", "name": "acme"},
                "created_at": "2026-11-22T06:00:00Z", "updated_at": "2026-11-22T06:00:00Z"
            }))
            .unwrap()
        };
        let l = Live::of(true, &[f("worker", 0), f("web", 0), f("clock", 1), f("release", 0)]);
        let order: Vec<&str> = l.quantities.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(order, ["clock", "release", "web", "worker"], "sorted by type");
        assert_eq!(l.types_at_zero, ["worker"], "web at 0 is not a scaled-down worker, release is always 0");
        assert!(
            !Live::of(true, &[f("release", 0), f("web", 2)]).looks_like_a_window(),
            "an app with a release phase, in maintenance, is no window"
        );
    }

    #[test]
    fn a_quantity_past_the_platforms_limits_is_refused() {
        let mut l = live(true, &[("web", 2), ("worker", 0)]);
        l.sizes = vec![("web".into(), "Standard-1X".into()), ("worker".into(), "Performance-M".into())];
        let scale = |v: &str, l: &Live| parse_scale(&[v.to_string()], l).map_err(|e| e.to_string());
        assert!(scale("worker=10", &l).is_ok());
        assert!(scale("worker=11", &l).unwrap_err().contains("10 per process type on Performance"));
        l.sizes[1].1 = "Basic".into();
        assert!(scale("worker=2", &l).unwrap_err().contains("one per process type on Eco and Basic"));
        l.sizes[1].1 = "standard-2X".into();
        assert!(scale("worker=98", &l).is_ok());
        assert!(
            scale("worker=99", &l)
                .unwrap_err()
                .contains("101 dynos in all, more than the platform runs for one app (100 on Cedar)"),
            "web's 2 count too"
        );
        l.fir = true;
        assert!(scale("worker=253", &l).is_ok());
        assert!(scale("worker=256", &l).unwrap_err().contains("255 per process type on Fir"));
    }

    #[test]
    fn a_window_left_open_elsewhere_is_said_plainly() {
        let l = live(true, &[("clock", 0), ("web", 2), ("worker", 0)]);
        assert!(l.looks_like_a_window());
        assert_eq!(
            l.unjournaled("acme"),
            "acme is in maintenance and clock, worker are at 0, but no window journal is on this machine: a window opened elsewhere may not have closed"
        );
        assert!(!live(false, &[("worker", 0)]).looks_like_a_window(), "a worker at 0 alone is no window");
        assert!(!live(true, &[("web", 0), ("worker", 1)]).looks_like_a_window(), "maintenance alone is no window");
    }

    #[test]
    fn the_restore_command_carries_the_values() {
        let j = Journal {
            version: 1,
            app: "acme".into(),
            opened_at: "2026-11-22T06:00:00Z".into(),
            pid: 1,
            maintenance_before: false,
            scaled: vec![
                Scaled { process_type: "clock".into(), quantity_before: 1 },
                Scaled { process_type: "worker".into(), quantity_before: 3 },
            ],
            steps: vec![],
            promotion: None,
            command: vec![],
        };
        assert_eq!(
            restore_command(&j),
            "maintenance-window restore -a acme --maintenance off --scale clock=1,worker=3 --confirm acme"
        );
        let l = live(true, &[("clock", 0), ("web", 2), ("worker", 0)]);
        assert_eq!(parse_scale(&["worker=3".into(), "clock=1".into()], &l).unwrap(), j.scaled);
        for bad in ["worker", "worker=x", "worker=-1", "nope=1"] {
            let err = parse_scale(&[bad.to_string()], &l).unwrap_err();
            assert_eq!(cli_kit::exit_for(&err), cli_kit::Exit::Usage, "{bad}");
        }
        // A type given twice is a mistake, not "the last one wins".
        let twice = parse_scale(&["worker=3".into(), "worker=1".into()], &l).unwrap_err();
        assert_eq!(cli_kit::exit_for(&twice), cli_kit::Exit::Usage);
        assert!(cli_kit::one_line(&twice).contains("`worker` is given twice"), "{twice}");
    }
}
