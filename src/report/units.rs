//! The units reports show their figures in, stated once so every table
//! agrees: milliseconds with two decimals, sizes the way pg_size_pretty
//! writes them.

/// Milliseconds with two decimals, the unit every timing is shown in.
pub fn ms(v: f64) -> String {
    format!("{v:.2}")
}

/// Bytes as kB/MB/GB, like pg_size_pretty.
pub fn size_pretty(bytes: i64) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} GB", b / 1024.0 / 1024.0 / 1024.0)
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.1} MB", b / 1024.0 / 1024.0)
    } else if b >= 1024.0 {
        format!("{:.0} kB", b / 1024.0)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_and_sizes_read_like_psql() {
        assert_eq!(ms(134.984), "134.98");
        assert_eq!(ms(0.0), "0.00");
        assert_eq!(size_pretty(0), "0 bytes");
        assert_eq!(size_pretty(1023), "1023 bytes");
        assert_eq!(size_pretty(720_896), "704 kB");
        assert_eq!(size_pretty(19_188_736), "18.3 MB");
        assert_eq!(size_pretty(3 * 1024 * 1024 * 1024), "3.0 GB");
    }
}
