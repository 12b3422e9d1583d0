//! From what the user typed to the dynos to stop: exact name, process type, or a choice.

use heroku_api::Dyno;

/// How the target was resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The argument is a dyno's name.
    Exact(Dyno),
    /// The argument is a process type with these dynos (at least one).
    Type(String, Vec<Dyno>),
    /// Nothing matched.
    NoMatch,
}

/// Resolves `target` against the app's dynos. Exact names win over types.
pub fn resolve(target: &str, dynos: &[Dyno]) -> Resolution {
    if let Some(d) = dynos.iter().find(|d| d.name == target || d.id == target) {
        return Resolution::Exact(d.clone());
    }
    let mut of_type: Vec<Dyno> = dynos.iter().filter(|d| d.process_type == target).cloned().collect();
    if of_type.is_empty() {
        return Resolution::NoMatch;
    }
    of_type.sort_by_key(|d| natural_key(&d.name));
    Resolution::Type(target.to_string(), of_type)
}

/// `web.2` before `web.10`.
pub fn natural_key(name: &str) -> (String, u64) {
    match name.rsplit_once('.') {
        Some((t, n)) => (t.to_string(), n.parse().unwrap_or(0)),
        None => (name.to_string(), 0),
    }
}

/// Dyno names ordered by closeness to `target` (edit distance, then name).
pub fn closest<'a>(target: &str, dynos: &'a [Dyno]) -> Vec<&'a str> {
    let mut names: Vec<(usize, &str)> = dynos
        .iter()
        .map(|d| (distance(target, &d.name).min(distance(target, &d.process_type) + 1), d.name.as_str()))
        .collect();
    names.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| natural_key(a.1).cmp(&natural_key(b.1))));
    names.into_iter().map(|(_, n)| n).collect()
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dyno(name: &str) -> Dyno {
        let t = name.split('.').next().unwrap();
        Dyno {
            id: format!("id-{name}"),
            name: name.into(),
            process_type: t.into(),
            state: "up".into(),
            command: "x".into(),
            size: None,
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
            attach_url: None,
            release: None,
        }
    }

    #[test]
    fn exact_names_types_and_no_match() {
        let dynos = vec![dyno("web.1"), dyno("web.10"), dyno("web.2"), dyno("release.2343"), dyno("run.1828")];
        assert_eq!(resolve("release.2343", &dynos), Resolution::Exact(dyno("release.2343")));
        assert_eq!(resolve("release", &dynos), Resolution::Type("release".into(), vec![dyno("release.2343")]));
        match resolve("web", &dynos) {
            Resolution::Type(_, ds) => {
                assert_eq!(ds.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["web.1", "web.2", "web.10"])
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(resolve("worker", &dynos), Resolution::NoMatch);
    }

    #[test]
    fn closest_names_first() {
        let dynos = vec![dyno("web.1"), dyno("release.2343"), dyno("run.1828")];
        assert_eq!(closest("relase", &dynos)[0], "release.2343");
        assert_eq!(closest("run.1829", &dynos)[0], "run.1828");
    }
}
