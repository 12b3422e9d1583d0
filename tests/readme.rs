//! The README's "Try it by hand" runs as written: its first block starts the standalone
//! simulator with a database, its second stages the backup incident in that database, looks
//! with pg-blockers and ends it. Each line is typed into one shell, as a person would; where a
//! person would glance before the next line (the backup stalled, the DROP waiting), the test
//! waits for that state in the database.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use test_support::postgres::PgCluster;
use test_support::sessions::{lock_waiters, wait_until};

fn bin_dir() -> PathBuf {
    test_support::bin_dir(&["heroku-sim", "pg-blockers"])
}

/// The ```sh blocks of the README section `heading`, each as its lines.
fn section_blocks(readme: &str, heading: &str) -> Vec<Vec<String>> {
    let section = readme.split(heading).nth(1).expect("the section exists");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in section.lines() {
        match (line.trim(), current.as_mut()) {
            ("```sh", None) => current = Some(Vec::new()),
            ("```", Some(_)) => blocks.extend(current.take()),
            (_, Some(b)) => b.push(line.to_string()),
            _ => {}
        }
    }
    blocks
}

/// One shell a person types into: each line runs in it, and its output and status come back.
struct Shell {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Shell {
    fn start(path: &str, database_url: &str) -> Shell {
        let mut child = Command::new("bash")
            .args(["--noprofile", "--norc"])
            .env("PATH", path)
            .env("DATABASE_URL", database_url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut shell = Shell { child, stdin, lines };
        shell.type_line("exec 2>&1");
        shell
    }

    /// Runs `line`; (its output, its status).
    fn type_line(&mut self, line: &str) -> (String, i32) {
        writeln!(self.stdin, "{line}\necho \"__status $?\"").unwrap();
        let mut text = String::new();
        loop {
            let l = self.lines.recv_timeout(Duration::from_secs(60)).expect("the line finishes within a minute");
            if let Some(status) = l.strip_prefix("__status ") {
                return (text, status.trim().parse().unwrap());
            }
            text.push_str(&l);
            text.push('\n');
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        // The shell and everything started from it (the stalled backup's reader included).
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

#[test]
fn try_it_by_hand_works_as_written() {
    let readme = std::fs::read_to_string(test_support::workspace_root().join("README.md")).unwrap();
    let blocks = section_blocks(&readme, "## Try it by hand");
    assert_eq!(blocks.len(), 2, "the simulator's terminal and the user's: {blocks:?}");
    let pg = PgCluster::start().unwrap();
    let url = pg.superuser_url("postgres");
    let psql_dir = pg.psql_path().parent().unwrap().to_path_buf();
    let path = format!("{}:{}:{}", bin_dir().display(), psql_dir.display(), std::env::var("PATH").unwrap_or_default());
    // "your database": the one line the reader fills in is given as the environment instead.
    let typed = |block: &[String]| -> Vec<String> {
        block.iter().filter(|l| !l.starts_with("export DATABASE_URL=")).cloned().collect()
    };

    let sim_lines = typed(&blocks[0]);
    assert_eq!(sim_lines.len(), 1, "{sim_lines:?}");
    let mut sim = Shell::start(&path, &url);
    writeln!(sim.stdin, "{}", sim_lines[0]).unwrap();
    let first = sim.lines.recv_timeout(Duration::from_secs(30)).expect("the simulator prints its URL");
    assert_eq!(first, "http://127.0.0.1:5099");
    let said: Vec<String> = (0..2).filter_map(|_| sim.lines.recv_timeout(Duration::from_secs(5)).ok()).collect();
    assert!(said.iter().any(|l| l.contains("HEROKU_API_KEY=sim-token")), "it says its token at start: {said:?}");

    let mut me = Shell::start(&path, &url);
    let mut outputs = Vec::new();
    for line in typed(&blocks[1]) {
        let (text, status) = me.type_line(&line);
        assert_eq!(status, 0, "`{line}` failed:\n{text}");
        if line.contains("COPY field_history TO STDOUT") {
            wait_until("the backup stalls in ClientWrite", || {
                pg.psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'Heroku Postgres Backups' AND wait_event = 'ClientWrite'")
                    .is_ok_and(|n| n.trim() == "1")
            });
        }
        if line.contains("DROP TABLE field_history") {
            wait_until("the DROP waits behind the backup", || lock_waiters(&pg) == 1);
        }
        outputs.push((line, text));
    }
    let look = &outputs.iter().find(|(l, _)| l.starts_with("pg-blockers -a acme  ")).expect("the look").1;
    assert!(look.contains("Heroku Postgres Backups") && look.contains("DROP TABLE field_history"), "{look}");
    assert!(look.contains("or the platform's way: heroku pg:backups:cancel -a acme"), "{look}");
    let fix = &outputs.iter().find(|(l, _)| l.contains("--cancel-roots")).expect("the fix").1;
    assert!(fix.contains("released its locks"), "{fix}");
    let gone = &outputs.last().unwrap().1;
    assert!(!gone.contains("field_history"), "the DROP ran: {gone}");
    // Nothing the tour started is left running: the stalled reader was ended by its own line.
    let (jobs, _) = me.type_line("jobs -r");
    assert!(!jobs.contains("sleep 3600"), "the tour leaves its reader running: {jobs}");
}
