//! The live processes of a session: a one-off dyno's processes, whatever process groups they
//! make (the dyno manager stops the whole container; a session is the nearest local thing).
//!
//! Systems differ in how processes are listed: Linux reads /proc, macOS asks libproc. Both ask
//! the kernel for the session with getsid(2), which on Linux and on macOS (XNU) answers for a
//! process of any session, not only the caller's.

/// The processes of the session `sid` leads that have not ended (a zombie has nothing left to
/// signal).
pub fn members(sid: u32) -> Vec<i32> {
    let Ok(sid) = libc::pid_t::try_from(sid) else { return Vec::new() };
    all_pids()
        .into_iter()
        // Never pid 0 (macOS lists its kernel_task so), for which getsid answers the caller's own
        // session. SAFETY: getsid only reads the kernel's process table.
        .filter(|&pid| pid > 0 && unsafe { libc::getsid(pid) } == sid && !is_zombie(pid))
        .collect()
}

#[cfg(target_os = "linux")]
fn all_pids() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries.flatten().filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()).collect()
}

#[cfg(target_os = "linux")]
fn is_zombie(pid: i32) -> bool {
    // The state is the first field after the command's closing parenthesis.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().next() == Some("Z")))
        .unwrap_or(false)
}

#[cfg(target_os = "macos")]
fn all_pids() -> Vec<i32> {
    // SAFETY: a null buffer asks only for the count.
    let count = unsafe { libc::proc_listallpids(std::ptr::null_mut(), 0) };
    let Ok(count) = usize::try_from(count) else { return Vec::new() };
    // Room for processes started between the two calls.
    let mut pids = vec![0 as libc::pid_t; count + 64];
    let bytes = libc::c_int::try_from(std::mem::size_of_val(pids.as_slice())).unwrap_or(libc::c_int::MAX);
    // SAFETY: the buffer is `bytes` long and libproc writes at most that many.
    let listed = unsafe { libc::proc_listallpids(pids.as_mut_ptr().cast(), bytes) };
    pids.truncate(usize::try_from(listed).unwrap_or(0));
    pids
}

#[cfg(target_os = "macos")]
fn is_zombie(pid: i32) -> bool {
    // SAFETY: proc_bsdinfo is plain data; zeroed is a valid value.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // A non-zero `arg` asks XNU to look among zombies too (it skips them otherwise, and getsid
    // answers ESRCH for one already). SAFETY: the buffer is one proc_bsdinfo, and `size` says so.
    let got = unsafe { libc::proc_pidinfo(pid, libc::PROC_PIDTBSDINFO, 1, (&raw mut info).cast(), size) };
    got == size && info.pbi_status == libc::SZOMB
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    #[test]
    fn a_sessions_members_are_found_whatever_process_groups_they_make() {
        // bash, because its job control makes a background job a process group of its own
        // even without a terminal (dash turns job control off there).
        let mut cmd = Command::new("bash");
        cmd.args(["-c", "set -m; sleep 30 & exec sleep 30"]);
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| if libc::setsid() < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) });
        }
        let mut leader = cmd.spawn().expect("bash starts");
        let leader_pid = leader.id() as i32;
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut found = super::members(leader.id());
        while found.len() < 2 && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(20));
            found = super::members(leader.id());
        }
        // SAFETY: getpgid only reads the process table.
        let groups: Vec<i32> = found.iter().map(|&pid| unsafe { libc::getpgid(pid) }).collect();
        for pid in &found {
            // SAFETY: signalling the processes this test started.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        let _ = leader.wait();
        assert_eq!(found.len(), 2, "the leader and its background sleep: {found:?}");
        assert!(found.contains(&leader_pid));
        assert!(
            groups.contains(&leader_pid) && groups.iter().any(|&g| g != leader_pid),
            "two process groups: {groups:?}"
        );
        // The orphaned sleep ends as its new parent reaps it; until then it is a zombie at most.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !super::members(leader.id()).is_empty() && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(super::members(leader.id()), Vec::<i32>::new(), "killed processes are no members");
    }
}
