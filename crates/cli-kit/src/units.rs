//! Counts and sizes as people read them.

/// `4,000,000`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `610 MB`, `4.2 GB`, `512 kB` (powers of 1024, as PostgreSQL's pg_size_pretty).
pub fn bytes(n: u64) -> String {
    let units = ["bytes", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < units.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 || v >= 10.0 {
        format!("{v:.0} {}", units[unit])
    } else {
        format!("{v:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_and_sizes_read_as_people_write_them() {
        assert_eq!(super::thousands(4_000_000), "4,000,000");
        assert_eq!(super::thousands(100_000), "100,000");
        assert_eq!(super::thousands(12), "12");
        assert_eq!(super::bytes(106_995_712), "102 MB");
        assert_eq!(super::bytes(4 << 30), "4.0 GB");
        assert_eq!(super::bytes(512), "512 bytes");
    }
}
