//! HTTP dates (`Wed, 25 Nov 2026 22:27:17 GMT`: RFC 7231's IMF-fixdate),
//! formatted by `httpdate`, and the current one cached for a second on
//! each thread as a server writes it on every response.

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last second the format's four-digit year can write:
/// `Fri, 31 Dec 9999 23:59:59 GMT`.
const LAST_SECOND: u64 = 253_402_300_799;

thread_local! {
    /// The second last formatted by [`now`] on this thread, and its date.
    static CURRENT: RefCell<Option<(u64, String)>> = const { RefCell::new(None) };
}

#[cfg(test)]
thread_local! {
    /// How many dates this thread formatted.
    static FORMATTED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// `time` as an HTTP date, to the second. A time before 1970 is written as
/// the epoch, one past the year 9999 as its last second (httpdate would
/// panic on either).
pub fn format(time: SystemTime) -> String {
    format_second(second_of(time))
}

/// The current time as an HTTP date: formatted at most once a second on
/// each thread, the same text again until the second changes.
pub fn now() -> String {
    cached(SystemTime::now())
}

/// Appends the current HTTP date to `out`, from this thread's cache (no
/// allocation within a second: what a response head needs).
pub fn append_now(out: &mut Vec<u8>) {
    append(SystemTime::now(), out);
}

/// Appends `time`'s HTTP date to `out`, through this thread's cache of
/// the last second.
pub fn append(time: SystemTime, out: &mut Vec<u8>) {
    with_cached(time, |date| out.extend_from_slice(date.as_bytes()));
}

/// [`format`] through this thread's cache of the last second.
fn cached(time: SystemTime) -> String {
    with_cached(time, str::to_string)
}

/// Calls `f` with `time`'s date from this thread's cache of the last
/// second, formatting it first when the second changed.
fn with_cached<R>(time: SystemTime, mut f: impl FnMut(&str) -> R) -> R {
    let second = second_of(time);
    CURRENT
        .try_with(|current| {
            let mut current = current.borrow_mut();
            if let Some((cached, date)) = &*current {
                if *cached == second {
                    return f(date);
                }
            }
            let date = format_second(second);
            let out = f(&date);
            *current = Some((second, date));
            out
        })
        // the thread is exiting and its cache is gone
        .unwrap_or_else(|_| f(&format_second(second)))
}

/// Whole seconds since the epoch, within the range the format can write.
fn second_of(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .min(LAST_SECOND)
}

fn format_second(second: u64) -> String {
    #[cfg(test)]
    FORMATTED.with(|n| n.set(n.get() + 1));
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(second))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_dates_are_the_cached_ones() {
        let mut out = b"Date: ".to_vec();
        append_now(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("Date: ") && text.ends_with(" GMT"),
            "{text}"
        );
        assert_eq!(text.len(), "Date: Wed, 25 Nov 2026 22:27:17 GMT".len());
    }

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    fn formatted() -> usize {
        FORMATTED.with(|n| n.get())
    }

    #[test]
    fn dates_are_imf_fixdates() {
        assert_eq!(
            format(at(1_795_645_637, 0)),
            "Wed, 25 Nov 2026 22:27:17 GMT"
        );
        // RFC 7231's example
        assert_eq!(format(at(784_111_777, 0)), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(format(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        // to the second: the fraction is dropped, not rounded
        assert_eq!(
            format(at(1_795_645_637, 999)),
            "Wed, 25 Nov 2026 22:27:17 GMT"
        );
        // a leap day
        assert_eq!(
            format(at(1_709_164_800, 0)),
            "Thu, 29 Feb 2024 00:00:00 GMT"
        );
    }

    #[test]
    fn times_out_of_range_are_clamped_instead_of_panicking() {
        let before = UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(format(before), "Thu, 01 Jan 1970 00:00:00 GMT");
        let after = at(LAST_SECOND, 0) + Duration::from_secs(86_400 * 400);
        assert_eq!(format(after), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(cached(after), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn the_cache_formats_once_a_second() {
        let start = formatted();
        assert_eq!(
            cached(at(1_795_645_637, 100)),
            "Wed, 25 Nov 2026 22:27:17 GMT"
        );
        assert_eq!(
            cached(at(1_795_645_637, 900)),
            "Wed, 25 Nov 2026 22:27:17 GMT"
        );
        assert_eq!(
            cached(at(1_795_645_637, 0)),
            "Wed, 25 Nov 2026 22:27:17 GMT"
        );
        assert_eq!(formatted() - start, 1);
        assert_eq!(
            cached(at(1_795_645_638, 0)),
            "Wed, 25 Nov 2026 22:27:18 GMT"
        );
        assert_eq!(formatted() - start, 2);
        // a clock set back is a new second too
        assert_eq!(
            cached(at(1_795_645_637, 0)),
            "Wed, 25 Nov 2026 22:27:17 GMT"
        );
        assert_eq!(formatted() - start, 3);
    }

    #[test]
    fn each_thread_has_its_own_cache() {
        let t = at(1_795_645_637, 0);
        cached(t);
        let start = formatted();
        cached(t);
        assert_eq!(formatted(), start, "cached on this thread");
        let other = std::thread::spawn(move || {
            let date = cached(t);
            (date, formatted())
        })
        .join()
        .unwrap();
        assert_eq!(other, ("Wed, 25 Nov 2026 22:27:17 GMT".to_string(), 1));
    }

    #[test]
    fn now_is_the_current_second() {
        let before = SystemTime::now();
        let date = now();
        let after = SystemTime::now();
        let parsed = httpdate::parse_http_date(&date).unwrap();
        assert!(parsed >= UNIX_EPOCH + Duration::from_secs(second_of(before)));
        assert!(parsed <= after, "{date}");
    }

    #[test]
    fn agrees_with_the_models_time_variables() {
        // rginx-core's own formatter, for $time_* and the logs
        let mut second = 0u64;
        while second < 4_102_444_800 {
            let t = at(second, 0);
            let mut out = String::new();
            rginx_core::plan::format_time(t, rginx_core::plan::TimeFormat::Http, &mut out);
            assert_eq!(format(t), out);
            second += 86_399 * 7 + 12_345;
        }
    }
}
