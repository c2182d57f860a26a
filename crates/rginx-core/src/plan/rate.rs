//! `limit_rate` and `limit_rate_after`, as nginx's write filter takes them
//! for a response (`ngx_http_write_filter`: the first write evaluates
//! them, unless a backend's `X-Accel-Limit-Rate` set the rate before).

use super::*;

/// A response's pace: at most `rate` bytes per second once `after` bytes
/// (its head included) went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Bytes per second (never 0: no limit is no `RateLimit`).
    pub rate: u64,
    /// Bytes sent before the limit applies.
    pub after: u64,
}

/// A size known at load, or one evaluated per request.
#[derive(Debug, Clone)]
enum SizeValue {
    Fixed(u64),
    Evaluated(Template),
}

impl SizeValue {
    fn compile(
        settings: &Settings,
        key: &str,
        names: &Names,
    ) -> Result<Option<Self>, RuntimeError> {
        Ok(match settings.get(key).map(|s| &s.value) {
            Some(crate::model::Value::Size(n)) => Some(SizeValue::Fixed(*n)),
            Some(crate::model::Value::Text(t)) => {
                Some(SizeValue::Evaluated(Template::compile(t, names)?))
            }
            _ => None,
        })
    }

    /// Its value (`ngx_http_complex_value_size` with a default of 0: a
    /// value that is no size is 0, with nginx's error line).
    fn eval(&self, ctx: &mut Ctx<'_>, errors: &mut Vec<String>) -> u64 {
        match self {
            SizeValue::Fixed(n) => *n,
            SizeValue::Evaluated(t) => {
                let mut text = String::new();
                t.render(&mut text, &mut |v, out| ctx.var(v, out));
                crate::values::parse_size(&text).unwrap_or_else(|| {
                    errors.push(format!("invalid size \"{text}\""));
                    0
                })
            }
        }
    }
}

/// A level's `limit_rate` and `limit_rate_after` (inherited).
#[derive(Debug, Clone, Default)]
pub(super) struct RateSettings {
    rate: Option<SizeValue>,
    after: Option<SizeValue>,
}

impl RateSettings {
    pub(super) fn compile(settings: &Settings, names: &Names) -> Result<Self, RuntimeError> {
        Ok(RateSettings {
            rate: SizeValue::compile(settings, "limit_rate", names)?,
            after: SizeValue::compile(settings, "limit_rate_after", names)?,
        })
    }

    fn is_empty(&self) -> bool {
        self.rate.is_none()
    }
}

impl Runtime {
    /// The pace of the response to a request in `scope`: `accel` (a
    /// backend's `X-Accel-Limit-Rate`) or the level's `limit_rate`, then
    /// its `limit_rate_after`. `None`: no limit. `errors` gets nginx's
    /// `[error]` lines for values that are no size.
    pub fn rate_limit(
        &self,
        scope: LogScope,
        req: &RequestHead<'_>,
        matched: &Matched,
        accel: Option<u64>,
        errors: &mut Vec<String>,
    ) -> Option<RateLimit> {
        let srv = self.servers.get(scope.server.0 as usize)?;
        let settings = scope
            .location
            .and_then(|id| srv.locations.get(id.0 as usize))
            .map_or(&srv.rate, |l| &l.rate);
        if settings.is_empty() && accel.is_none() {
            return None;
        }
        // the rate first: `limit_rate_after` counts only under a limit
        let pick = |eval: &mut dyn FnMut(&SizeValue) -> u64| {
            let rate = match (accel, &settings.rate) {
                (Some(rate), _) => rate,
                (None, Some(value)) => eval(value),
                (None, None) => 0,
            };
            let after = if rate == 0 {
                0
            } else {
                settings.after.as_ref().map_or(0, &mut *eval)
            };
            (rate > 0).then_some(RateLimit { rate, after })
        };
        // sizes known at load need no evaluation state
        let evaluated = |v: &Option<SizeValue>| matches!(v, Some(SizeValue::Evaluated(_)));
        if !evaluated(&settings.rate) && !evaluated(&settings.after) {
            return pick(&mut |v| match v {
                SizeValue::Fixed(n) => *n,
                SizeValue::Evaluated(_) => 0,
            });
        }
        self.with_request_ctx(scope, req, matched, None, None, |ctx| {
            pick(&mut |v| v.eval(ctx, errors))
        })
        .flatten()
    }
}
