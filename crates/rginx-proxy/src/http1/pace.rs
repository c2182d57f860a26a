//! A response written at `limit_rate`, as nginx's write filter paces it
//! (`ngx_http_write_filter`): before a write, the bytes allowed are
//! `rate × (whole seconds since the request started + 1) − (sent −
//! limit_rate_after)`, and none allowed means a wait until there would
//! be; after a write of `n` paced bytes the next waits `n / rate` seconds.

use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rginx_core::plan::RateLimit;
use tokio::time::Instant;

use super::conn::ClientConn;

/// nginx's `sendfile_max_chunk` default (2m since 1.21.4), the most one
/// paced write sends.
const MAX_CHUNK: u64 = 2 * 1024 * 1024;

/// The pace of one response.
#[derive(Debug)]
pub struct Pace {
    limit: RateLimit,
    /// `r->start_sec`.
    start_sec: u64,
    /// Bytes of the response written (nginx's `c->sent`, zeroed for each
    /// request of a connection).
    sent: u64,
    /// When the next write may go, after the last one's delay.
    resume: Option<Instant>,
}

impl Pace {
    /// The pace `limit` sets for a request that started at `started`.
    pub fn new(limit: RateLimit, started: SystemTime) -> Pace {
        Pace {
            limit,
            start_sec: whole_seconds(started),
            sent: 0,
            resume: None,
        }
    }

    /// Waits until a write may go; how many bytes it may carry.
    async fn allowance(&mut self) -> u64 {
        if let Some(at) = self.resume.take() {
            tokio::time::sleep_until(at).await;
        }
        let RateLimit { rate, after } = self.limit;
        loop {
            let seconds = whole_seconds(SystemTime::now()).saturating_sub(self.start_sec) + 1;
            let allowed = i128::from(rate) * i128::from(seconds)
                - (i128::from(self.sent) - i128::from(after));
            if allowed > 0 {
                return u64::try_from(allowed).unwrap_or(u64::MAX).min(MAX_CHUNK);
            }
            let wait = u64::try_from(-allowed * 1000 / i128::from(rate) + 1).unwrap_or(u64::MAX);
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }

    /// `n` bytes went out: the delay before the next write.
    fn wrote(&mut self, n: u64) {
        let RateLimit { rate, after } = self.limit;
        let before = self.sent.saturating_sub(after);
        self.sent += n;
        let delay = (self.sent.saturating_sub(after) - before) * 1000 / rate;
        if delay > 0 {
            self.resume = Some(Instant::now() + Duration::from_millis(delay));
        }
    }
}

/// Writes `bytes` to the client, paced when `pace` is given.
pub async fn paced_write(
    conn: &mut ClientConn,
    bytes: &[u8],
    pace: Option<&mut Pace>,
) -> io::Result<()> {
    let Some(pace) = pace else {
        return conn.write(bytes).await;
    };
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = usize::try_from(pace.allowance().await)
            .unwrap_or(usize::MAX)
            .min(rest.len());
        conn.write(&rest[..n]).await?;
        pace.wrote(n as u64);
        rest = &rest[n..];
    }
    Ok(())
}

fn whole_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_is_followed_by_its_delay() {
        let limit = RateLimit {
            rate: 1000,
            after: 100,
        };
        let mut pace = Pace::new(limit, SystemTime::now());
        // what goes before `after` costs no time
        pace.wrote(100);
        assert!(pace.resume.is_none());
        pace.wrote(500);
        let wait = pace.resume.expect("a delay") - Instant::now();
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
    }
}
