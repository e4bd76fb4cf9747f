//! Human-readable numbers for the CLI's output.

/// 1234567 -> "1,234,567".
pub fn count(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in decimal units: "4.79 MB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    format!("{v:.2} {unit}")
}

/// Cycles with a T (10^12) figure: "1,234,000,000 cycles (0.0012 T)".
pub fn cycles(n: u128) -> String {
    format!("{} cycles ({:.4} T)", count(n), n as f64 / 1e12)
}

/// Throughput in MB/s.
pub fn rate(bytes: u64, secs: f64) -> String {
    if secs <= 0.0 {
        return "- MB/s".into();
    }
    format!("{:.1} MB/s", bytes as f64 / 1e6 / secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn byte_units() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(4_786_458), "4.79 MB");
        assert_eq!(bytes(2_000_000_000), "2.00 GB");
    }
}
