//! Whether a COMMAND a tool was given can be started, checked before anything changes: a typo
//! found after the site went into maintenance (or after a migration began) is found too late.

use std::path::{Path, PathBuf};

/// Where `program` would be found: a path with a `/` as it is, else the first executable file
/// of that name on PATH. None: it cannot be started.
pub fn resolve(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| executable(p))
}

/// A usage error (exit 2) unless `argv[0]` can be started; `then` says what was not done.
pub fn check_startable(argv: &[String], then: &str) -> anyhow::Result<()> {
    let Some(program) = argv.first().filter(|p| !p.trim().is_empty()) else {
        return Err(crate::usage(format!("the COMMAND after `--` is empty; {then}")));
    };
    let Some(path) = resolve(program) else {
        return Err(crate::usage(format!(
            "cannot start `{}`: no executable of that name on PATH (or the path is not an executable file); {then}",
            crate::printable(program)
        )));
    };
    if let Some(why) = why_exec_would_fail(&path, 0) {
        return Err(crate::usage(format!("cannot start `{}`: {why}; {then}", crate::printable(program))));
    }
    Ok(())
}

/// How deep `#!` interpreters may nest before the kernel refuses (Linux allows a few levels).
const MAX_INTERPRETER_DEPTH: usize = 4;

/// Why the kernel would refuse to execute `path`, found by reading its first bytes as the
/// kernel does: a `#!` line whose interpreter is missing or not executable (or, through
/// `/usr/bin/env NAME`, a NAME not on PATH), an ELF file built for another machine or word
/// size, or whose program loader is missing. None: nothing seen that would make exec fail
/// (a file this process may not read is left to the start itself).
pub fn why_exec_would_fail(path: &Path, depth: usize) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)).ok()?;
    let head = &head[..n];
    if let Some(line) = head.strip_prefix(b"#!") {
        return why_interpreter_fails(path, line, depth);
    }
    if head.starts_with(b"\x7fELF") {
        // ELF is Linux's format (the BSDs' too, but we ship for Linux and macOS only).
        if !cfg!(target_os = "linux") {
            return Some(format!("{} is a Linux program, and this is {}", path.display(), std::env::consts::OS));
        }
        return why_elf_fails(path, head);
    }
    if is_mach_o(head) {
        return (!cfg!(target_os = "macos")).then(|| format!("{} is a macOS program", path.display()));
    }
    if head.is_empty() {
        return Some(format!("{} is empty: neither a program nor a script with a #! line", path.display()));
    }
    // Text with no `#!`: execve refuses it (ENOEXEC) and a spawned process is not retried
    // through /bin/sh.
    Some(format!(
        "{} has no #! line and is not a program: start it with its interpreter (e.g. sh {}), or add a #! line",
        path.display(),
        path.display()
    ))
}

fn why_interpreter_fails(path: &Path, line: &[u8], depth: usize) -> Option<String> {
    // A file that is only its `#!` line has no newline; the kernel reads the first 256 bytes.
    let end = line.iter().position(|b| *b == b'\n').unwrap_or(line.len());
    let line = String::from_utf8_lossy(&line[..end]);
    let mut words = line.split([' ', '\t']).filter(|w| !w.is_empty());
    let Some(interpreter) = words.next() else {
        return Some(format!("the #! line of {} names no interpreter", path.display()));
    };
    let interpreter = interpreter.trim_end_matches('\r');
    let shown = crate::printable(interpreter);
    let ipath = PathBuf::from(interpreter);
    if resolve_path(&ipath).is_none() {
        return Some(format!(
            "its interpreter {shown} (the #! line of {}) does not exist or is not executable",
            path.display()
        ));
    }
    if depth + 1 >= MAX_INTERPRETER_DEPTH {
        return Some(format!("its #! interpreters nest more than {MAX_INTERPRETER_DEPTH} deep"));
    }
    if let Some(why) = why_exec_would_fail(&ipath, depth + 1) {
        return Some(format!("its interpreter {shown}: {why}"));
    }
    // `#!/usr/bin/env NAME`: env starts, then fails with 127 when NAME is not on PATH.
    if ipath.file_name().is_some_and(|n| n == "env") {
        if let Some(name) = words.next().map(|w| w.trim_end_matches('\r')).filter(|w| !w.starts_with('-')) {
            if resolve(name).is_none() {
                return Some(format!(
                    "its #! line runs `env {}`, and no executable of that name is on PATH",
                    crate::printable(name)
                ));
            }
        }
    }
    None
}

/// A Mach-O file (macOS's programs: 32- or 64-bit, either byte order, or a universal binary).
fn is_mach_o(head: &[u8]) -> bool {
    const MAGICS: [[u8; 4]; 5] = [
        [0xfe, 0xed, 0xfa, 0xce],
        [0xfe, 0xed, 0xfa, 0xcf],
        [0xce, 0xfa, 0xed, 0xfe],
        [0xcf, 0xfa, 0xed, 0xfe],
        [0xca, 0xfe, 0xba, 0xbe],
    ];
    head.get(..4).is_some_and(|m| MAGICS.iter().any(|x| x == m))
}

/// `p` when it is an executable file (no PATH search: a `#!` interpreter is a path).
fn resolve_path(p: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).then(|| p.to_path_buf())
}

/// The ELF machine numbers of the machines we are built for.
fn own_elf_machine() -> Option<u16> {
    match std::env::consts::ARCH {
        "x86_64" => Some(62),
        "aarch64" => Some(183),
        "x86" => Some(3),
        "arm" => Some(40),
        _ => None,
    }
}

fn why_elf_fails(path: &Path, head: &[u8]) -> Option<String> {
    if head.len() < 20 {
        return Some(format!("{} is a truncated ELF file", path.display()));
    }
    let class64 = head[4] == 2;
    let little = head[5] == 1;
    let machine =
        if little { u16::from_le_bytes([head[18], head[19]]) } else { u16::from_be_bytes([head[18], head[19]]) };
    let own_class64 = cfg!(target_pointer_width = "64");
    if own_elf_machine().is_some_and(|m| m != machine) || (class64 != own_class64 && machine != 62 && machine != 183) {
        return Some(format!(
            "{} is a program for another machine (ELF machine {machine}; this one is {})",
            path.display(),
            std::env::consts::ARCH
        ));
    }
    if class64 != own_class64 || little != cfg!(target_endian = "little") {
        return Some(format!("{} is a program for another word size or byte order", path.display()));
    }
    match elf_interpreter(path) {
        Some(loader) if !Path::new(&loader).exists() => Some(format!(
            "{} needs the program loader {}, which this machine does not have (built for another C library?)",
            path.display(),
            crate::printable(&loader)
        )),
        _ => None,
    }
}

/// The `PT_INTERP` path of a 64-bit little-endian ELF file (the dynamic loader the kernel
/// starts for it), when it has one.
fn elf_interpreter(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    let u16_at = |o: usize| bytes.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| bytes.get(o..o + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()));
    let u64_at = |o: usize| bytes.get(o..o + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap()));
    if bytes.get(4) != Some(&2) || bytes.get(5) != Some(&1) {
        return None;
    }
    let phoff = u64_at(32)? as usize;
    let phentsize = u16_at(54)? as usize;
    let phnum = u16_at(56)? as usize;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(ph)? == 3 {
            let (off, size) = (u64_at(ph + 8)? as usize, u64_at(ph + 32)? as usize);
            let raw = bytes.get(off..off + size)?;
            return Some(String::from_utf8_lossy(raw.split(|b| *b == 0).next()?).into_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file in a fresh directory, with the execute bit.
    fn executable(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn what_exec_would_refuse_is_found_before_starting() {
        let dir = std::env::temp_dir().join(format!("program-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let why = |p: &Path| why_exec_would_fail(p, 0).unwrap_or_default();
        assert_eq!(why(&executable(&dir, "ok.sh", b"#!/bin/sh\necho hi\n")), "");
        assert_eq!(why(&executable(&dir, "only-line", b"#!/bin/sh")), "");
        assert_eq!(why(&executable(&dir, "env-ok", b"#!/usr/bin/env sh\n")), "");
        assert!(why(&executable(&dir, "bad-interp", b"#!/nonexistent/interp\n")).contains("/nonexistent/interp"));
        assert!(why(&executable(&dir, "bad-env", b"#!/usr/bin/env no-such-interp-here\n"))
            .contains("`env no-such-interp-here`"));
        assert!(why(&executable(&dir, "no-line", b"echo hi\n")).contains("no #! line"));
        // An interpreter that is itself a script with a missing interpreter.
        let inner = executable(&dir, "inner", b"#!/nonexistent/deeper\n");
        let outer = executable(&dir, "outer", format!("#!{}\n", inner.display()).as_bytes());
        assert!(why(&outer).contains("/nonexistent/deeper"), "{}", why(&outer));
        // An ELF header for another machine (big-endian SPARC, 32-bit).
        let mut foreign = b"\x7fELF\x01\x02\x01".to_vec();
        foreign.resize(64, 0);
        foreign[18] = 0;
        foreign[19] = 2;
        assert!(why(&executable(&dir, "foreign", &foreign)).contains("a program for another machine"));
        // A program whose loader this machine lacks (built against another C library).
        let mut program = std::fs::read(resolve("true").unwrap()).unwrap();
        if let Some(at) = program.windows(27).position(|w| w == b"/lib64/ld-linux-x86-64.so.2") {
            program[at..at + 27].copy_from_slice(b"/nonexist/ld-musl-x86_64.so");
            assert!(why(&executable(&dir, "other-libc", &program)).contains("needs the program loader /nonexist/"));
        }
        // A macOS program on Linux (and the other way round) is another machine's.
        let mut mach_o = vec![0xcf, 0xfa, 0xed, 0xfe];
        mach_o.resize(64, 0);
        let why_mach_o = why(&executable(&dir, "macos-bin", &mach_o));
        assert_eq!(why_mach_o.is_empty(), cfg!(target_os = "macos"), "{why_mach_o}");
        // This machine's own programs start.
        assert_eq!(why(&resolve("sh").unwrap()), "");
        assert_eq!(why(&std::env::current_exe().unwrap()), "");
        let e = check_startable(&[dir.join("bad-interp").display().to_string()], "nothing was changed").unwrap_err();
        assert_eq!(crate::exit_for(&e), crate::Exit::Usage);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_program_is_found_on_path_or_by_its_path() {
        assert!(resolve("sh").is_some());
        assert!(resolve("/bin/sh").is_some());
        assert!(resolve("/nonexistent/cmd").is_none());
        assert!(resolve("surely-no-such-program-here").is_none());
        let e = check_startable(&["/nonexistent/cmd".into()], "nothing was changed").unwrap_err();
        assert_eq!(crate::exit_for(&e), crate::Exit::Usage);
        assert!(crate::one_line(&e).ends_with("nothing was changed"));
    }
}
