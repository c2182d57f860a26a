//! Value parsers with nginx's rules: `ngx_parse_time`, `ngx_parse_size`,
//! `ngx_parse_offset`, `ngx_atoi`.

use std::time::Duration;

/// Parses an nginx time (`10`, `10s`, `1m30s`, `500ms`, `1h 30m`). Units go
/// from largest to smallest; a bare number is seconds. With `is_sec`
/// (second-granularity directives) `ms` is not allowed; without it (the
/// millisecond slots) `y` and `M` are not allowed, exactly as in nginx.
pub fn parse_time(text: &str, is_sec: bool) -> Option<Duration> {
    // steps in nginx's order; a unit must come after the previous one
    const START: u8 = 0;
    const YEAR: u8 = 1;
    const MONTH: u8 = 2;
    const WEEK: u8 = 3;
    const DAY: u8 = 4;
    const HOUR: u8 = 5;
    const MIN: u8 = 6;
    const SEC: u8 = 7;
    const MSEC: u8 = 8;
    let bytes = text.as_bytes();
    let mut step = if is_sec { START } else { MONTH };
    let mut value: u64 = 0;
    let mut total_ms: u64 = 0;
    let mut valid = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if b.is_ascii_digit() {
            value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            valid = true;
            continue;
        }
        let (next, scale_ms): (u8, u64) = match b {
            b'y' if step == START => (YEAR, 365 * 86_400_000),
            b'M' if step < YEAR => (MONTH, 30 * 86_400_000),
            b'w' if step < WEEK => (WEEK, 7 * 86_400_000),
            b'd' if step < DAY => (DAY, 86_400_000),
            b'h' if step < HOUR => (HOUR, 3_600_000),
            b'm' if bytes.get(i) == Some(&b's') => {
                if is_sec || step >= MSEC {
                    return None;
                }
                i += 1;
                (MSEC, 1)
            }
            b'm' if step < MIN => (MIN, 60_000),
            b's' if step < SEC => (SEC, 1000),
            _ => return None,
        };
        step = next;
        total_ms = total_ms.checked_add(value.checked_mul(scale_ms)?)?;
        value = 0;
        while bytes.get(i) == Some(&b' ') {
            i += 1;
        }
    }
    if !valid {
        return None;
    }
    total_ms = total_ms.checked_add(value.checked_mul(1000)?)?;
    // nginx keeps times in an ngx_msec_t / time_t; refuse absurd values
    if total_ms > i64::MAX as u64 / 1000 {
        return None;
    }
    let ms = if is_sec {
        total_ms / 1000 * 1000
    } else {
        total_ms
    };
    Some(Duration::from_millis(ms))
}

/// Parses a size (`ngx_parse_size`): a number with an optional `k`/`K` or
/// `m`/`M` suffix.
pub fn parse_size(text: &str) -> Option<u64> {
    parse_scaled(text, false)
}

/// Parses an offset (`ngx_parse_offset`): like a size, and `g`/`G` too.
pub fn parse_offset(text: &str) -> Option<u64> {
    parse_scaled(text, true)
}

fn parse_scaled(text: &str, allow_g: bool) -> Option<u64> {
    let (digits, scale) = match text.as_bytes().last()? {
        b'k' | b'K' => (&text[..text.len() - 1], 1024),
        b'm' | b'M' => (&text[..text.len() - 1], 1024 * 1024),
        b'g' | b'G' if allow_g => (&text[..text.len() - 1], 1024 * 1024 * 1024),
        _ => (text, 1),
    };
    parse_number(digits)?.checked_mul(scale)
}

/// Parses a non-negative decimal integer (`ngx_atoi`): digits only.
pub fn parse_number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Parses `on`/`off` (nginx's flag slot is case-insensitive).
pub fn parse_flag(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("on") {
        Some(true)
    } else if text.eq_ignore_ascii_case("off") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> Option<u64> {
        parse_time(text, false).map(|d| d.as_millis() as u64)
    }

    #[test]
    fn times_follow_ngx_parse_time() {
        assert_eq!(ms("10"), Some(10_000));
        assert_eq!(ms("10s"), Some(10_000));
        assert_eq!(ms("500ms"), Some(500));
        assert_eq!(ms("1m30s"), Some(90_000));
        assert_eq!(ms("1h 30m"), Some(5_400_000));
        assert_eq!(ms("1d"), Some(86_400_000));
        assert_eq!(ms("1y"), None);
        assert_eq!(ms("1M"), None);
        assert_eq!(ms("30m1h"), None);
        assert_eq!(ms("3x"), None);
        assert_eq!(ms(""), None);
        assert_eq!(ms("s"), None);
        assert_eq!(
            parse_time("1y", true),
            Some(Duration::from_secs(365 * 86_400))
        );
        assert_eq!(parse_time("5ms", true), None);
    }

    #[test]
    fn sizes_and_offsets() {
        assert_eq!(parse_size("8k"), Some(8192));
        assert_eq!(parse_size("1M"), Some(1 << 20));
        assert_eq!(parse_size("1g"), None);
        assert_eq!(parse_offset("1g"), Some(1 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("k"), None);
        assert_eq!(parse_number("-1"), None);
    }
}
