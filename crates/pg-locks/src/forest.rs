//! Who blocks whom: root blockers (blocking, not waiting) → chains → victims.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::snapshot::Snapshot;

/// One session in a blocking tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Backend pid.
    pub pid: i32,
    /// Sessions waiting directly on this one.
    pub blocking_direct: usize,
    /// Sessions waiting on this one directly or through others.
    pub blocking_total: usize,
    /// Sessions placed under this one (each victim appears once in the forest).
    pub children: Vec<Node>,
}

/// The blocking forest of a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forest {
    /// One tree per root blocker, the one blocking most first.
    pub roots: Vec<Node>,
    /// Sessions waiting on another session's lock.
    pub blocked_total: usize,
}

/// The waits-for graph: `waits_on[v]` are v's blockers, `victims[b]` are sessions waiting on b.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// Victim → blockers.
    pub waits_on: BTreeMap<i32, BTreeSet<i32>>,
    /// Blocker → direct victims.
    pub victims: BTreeMap<i32, BTreeSet<i32>>,
}

impl Graph {
    /// Builds the graph from a snapshot.
    pub fn of(snapshot: &Snapshot) -> Graph {
        let mut g = Graph::default();
        for s in snapshot.sessions.iter().filter(|s| s.is_blocked()) {
            for &b in &s.blocked_by {
                g.waits_on.entry(s.pid).or_default().insert(b);
                g.victims.entry(b).or_default().insert(s.pid);
            }
        }
        g
    }

    /// Everyone waiting on `pid`, directly or through a chain.
    pub fn downstream(&self, pid: i32) -> BTreeSet<i32> {
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([pid]);
        while let Some(p) = queue.pop_front() {
            for &v in self.victims.get(&p).into_iter().flatten() {
                if v != pid && seen.insert(v) {
                    queue.push_back(v);
                }
            }
        }
        seen
    }

    /// Sessions that can proceed if `pid` goes away: a waiter is released once every
    /// session it waits on is gone or released. Chains release in order — the ALTER behind
    /// a cancelled reader runs, then the readers queued behind the ALTER.
    pub fn released_by_removing(&self, pid: i32) -> BTreeSet<i32> {
        let mut released: BTreeSet<i32> = BTreeSet::from([pid]);
        loop {
            let before = released.len();
            for (v, blockers) in &self.waits_on {
                if !released.contains(v) && blockers.iter().all(|b| released.contains(b)) {
                    released.insert(*v);
                }
            }
            if released.len() == before {
                break;
            }
        }
        released.remove(&pid);
        released
    }
}

impl Forest {
    /// Builds the forest. Roots are sessions that block others and wait on nobody; waiters
    /// caught in a cycle with no such root (a deadlock about to be broken by the server) get
    /// their lowest pid as root so nothing blocked goes unshown.
    pub fn build(snapshot: &Snapshot) -> Forest {
        let g = Graph::of(snapshot);
        let mut roots: Vec<i32> = g.victims.keys().copied().filter(|b| !g.waits_on.contains_key(b)).collect();
        let mut placed: BTreeSet<i32> = BTreeSet::new();
        for &r in &roots {
            placed.insert(r);
            placed.extend(g.downstream(r));
        }
        for &v in g.waits_on.keys() {
            if !placed.contains(&v) {
                roots.push(v);
                placed.insert(v);
                placed.extend(g.downstream(v));
            }
        }
        roots.sort_by_key(|r| (std::cmp::Reverse(g.downstream(*r).len()), *r));
        let mut visited = BTreeSet::new();
        let mut trees = Vec::new();
        for r in roots {
            visited.insert(r);
            trees.push(r);
        }
        // Breadth-first, so each victim hangs under the blocker closest to a root.
        let mut nodes: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        let mut queue: VecDeque<i32> = trees.iter().copied().collect();
        while let Some(p) = queue.pop_front() {
            for &v in g.victims.get(&p).into_iter().flatten() {
                if visited.insert(v) {
                    nodes.entry(p).or_default().push(v);
                    queue.push_back(v);
                }
            }
        }
        fn build_node(pid: i32, g: &Graph, nodes: &BTreeMap<i32, Vec<i32>>) -> Node {
            let mut children: Vec<Node> =
                nodes.get(&pid).into_iter().flatten().map(|&c| build_node(c, g, nodes)).collect();
            children.sort_by_key(|c| (std::cmp::Reverse(c.blocking_total), c.pid));
            Node {
                pid,
                blocking_direct: g.victims.get(&pid).map_or(0, |v| v.len()),
                blocking_total: g.downstream(pid).len(),
                children,
            }
        }
        let roots = trees.into_iter().map(|r| build_node(r, &g, &nodes)).collect();
        Forest { roots, blocked_total: g.waits_on.len() }
    }

    /// True when nothing waits on anything.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }
}

/// A DDL statement waiting for a lock, with what it blocks and who holds it up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitingDdl {
    /// The DDL's pid.
    pub pid: i32,
    /// Sessions queued behind it, directly or through others.
    pub blocking_total: usize,
    /// The sessions it waits for.
    pub waits_for: Vec<i32>,
    /// The root blocker at the head of its chain, when there is one.
    pub root: Option<i32>,
}

/// The session at the head of `pid`'s chain: follow the first blocker until one waits on nobody.
pub fn root_of(snapshot: &Snapshot, pid: i32) -> Option<i32> {
    let mut cur = pid;
    let mut seen = BTreeSet::from([pid]);
    loop {
        let s = snapshot.get(cur)?;
        match s.blocked_by.first() {
            None => return (cur != pid).then_some(cur),
            Some(&b) if !seen.insert(b) => return Some(b),
            Some(&b) => cur = b,
        }
    }
}

/// Every DDL or migration statement waiting for a lock, most blocking first.
pub fn waiting_ddl(snapshot: &Snapshot) -> Vec<WaitingDdl> {
    let g = Graph::of(snapshot);
    let mut out: Vec<WaitingDdl> = snapshot
        .blocked()
        .filter(|s| s.has(crate::Label::Ddl) || s.has(crate::Label::Migration))
        .map(|s| WaitingDdl {
            pid: s.pid,
            blocking_total: g.downstream(s.pid).len(),
            waits_for: s.blocked_by.clone(),
            root: root_of(snapshot, s.pid),
        })
        .collect();
    out.sort_by_key(|w| (std::cmp::Reverse(w.blocking_total), w.pid));
    out
}

impl Forest {
    /// Keeps only trees in which someone has waited at least `min_wait` (`None`: all).
    pub fn with_min_wait(self, snapshot: &Snapshot, min_wait: Option<std::time::Duration>) -> Forest {
        let Some(min) = min_wait else { return self };
        let min = min.as_secs_f64();
        let roots: Vec<Node> = self
            .roots
            .into_iter()
            .filter(|r| {
                r.pids()
                    .iter()
                    .skip(1)
                    .any(|p| snapshot.get(*p).and_then(crate::Session::wait_secs).is_some_and(|w| w >= min))
            })
            .collect();
        let blocked_total = roots.iter().map(|r| r.pids().len() - 1).sum();
        Forest { roots, blocked_total }
    }
}

impl Node {
    /// Every pid in this tree, root first.
    pub fn pids(&self) -> Vec<i32> {
        let mut out = vec![self.pid];
        for c in &self.children {
            out.extend(c.pids());
        }
        out
    }
}
