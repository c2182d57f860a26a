//! The decision for one request: server, location and the request sent
//! upstream, or the answer nginx gives itself.

use super::*;

impl Runtime {
    /// Selects the server and matches the location only (no plan): what
    /// routing costs. `None` when the request is one nginx rejects.
    pub fn match_location(&self, req: &RequestHead<'_>) -> Option<(ServerId, LocationMatch)> {
        let target = uri::parse_target(req.target).ok()?;
        let raw_host = target
            .host
            .or_else(|| {
                req.headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("host"))
                    .map(|(_, v)| *v)
            })
            .unwrap_or("");
        let host = if raw_host.is_empty() {
            Cow::Borrowed("")
        } else {
            normalize_host(raw_host)?
        };
        let socket = self.selector.socket_for(req.local).unwrap_or(0);
        let server_id = self
            .selector
            .select(socket, &host, &mut Pcre::is_match)
            .ok()?;
        let server = self.servers.get(server_id.0 as usize)?;
        let path = normalized(target.raw_path).ok()?;
        Some((server_id, server.table.find(&path, &mut Pcre::is_match)))
    }

    /// Decides what to do with a request.
    pub fn decide<'a>(&'a self, req: &RequestHead<'a>) -> Decision<'a> {
        self.decide_scoped(req).0
    }

    /// [`Runtime::decide`], and whose `access_log` the request goes to.
    pub fn decide_scoped<'a>(&'a self, req: &RequestHead<'a>) -> (Decision<'a>, LogScope) {
        let (decision, scope, _) = self.decide_matched(req);
        (decision, scope)
    }

    /// [`Runtime::decide_scoped`], and the regex groups the decision left
    /// (for the headers filter and the access log).
    pub fn decide_matched<'a>(
        &'a self,
        req: &RequestHead<'a>,
    ) -> (Decision<'a>, LogScope, Matched) {
        let socket = self.selector.socket_for(req.local).unwrap_or(0);
        let mut scope = LogScope {
            server: self.selector.default_server(socket),
            location: None,
        };
        let mut captures = Captures::default();
        match self.decide_inner(req, socket, &mut scope, &mut captures, None) {
            Ok(d) | Err(d) => (
                d,
                scope,
                Matched {
                    captures,
                    redirected: None,
                },
            ),
        }
    }

    /// The decision for a request an `error_page` sends on
    /// (`ngx_http_internal_redirect`, `ngx_http_named_location`): in the
    /// same server, with the new `$uri` and `$args` (or straight to the
    /// named location), `internal` locations allowed, the body read before
    /// sent again ([`Internal::resend_body`]).
    /// `req` carries the method the redirect uses.
    pub fn decide_redirected<'a>(
        &'a self,
        req: &RequestHead<'a>,
        internal: &Internal<'a>,
    ) -> (Decision<'a>, LogScope, Matched) {
        let socket = self.selector.socket_for(req.local).unwrap_or(0);
        let mut scope = LogScope {
            server: internal.server,
            location: None,
        };
        let mut captures = Captures::default();
        match self.decide_inner(req, socket, &mut scope, &mut captures, Some(internal)) {
            Ok(d) | Err(d) => {
                // a named location keeps the request's URI
                let redirected = (!internal.named)
                    .then(|| (internal.uri.to_string(), internal.args.map(str::to_string)));
                (
                    d,
                    scope,
                    Matched {
                        captures,
                        redirected,
                    },
                )
            }
        }
    }

    fn decide_inner<'a>(
        &'a self,
        req: &RequestHead<'a>,
        socket: usize,
        scope: &mut LogScope,
        captures: &mut Captures,
        internal: Option<&Internal<'a>>,
    ) -> Result<Decision<'a>, Decision<'a>> {
        let bad = Decision::Respond(400);
        check_head(req).map_err(Decision::Respond)?;
        let mut target = uri::parse_target(req.target).map_err(|_| bad.clone())?;
        // a named location keeps the request's arguments
        if let Some(i) = internal.filter(|i| !i.named) {
            target.args = i.args;
        }
        // $host: the request line, then the Host header
        let mut host_headers = req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("host"));
        let host_header = host_headers.next().map(|(_, v)| *v);
        if host_headers.next().is_some() {
            return Err(bad);
        }
        if req.minor_version >= 1 && host_header.is_none() && target.host.is_none() {
            return Err(bad);
        }
        let host: Cow<'_, str> = match (target.host, host_header) {
            (Some(h), _) | (None, Some(h)) => normalize_host(h).ok_or(bad.clone())?,
            (None, None) => Cow::Borrowed(""),
        };
        let server_id = match internal {
            // an internal redirect stays in its server
            Some(i) => i.server,
            None => self
                .selector
                .select(socket, &host, &mut |re, subject| captures.run(re, subject))
                .map_err(|(e, re)| Decision::RegexFailed {
                    alert: e.message(host.as_bytes(), re.as_str()),
                    answer: false,
                })?,
        };
        scope.server = server_id;
        let Some(server) = self.servers.get(server_id.0 as usize) else {
            return Err(Decision::Respond(404));
        };
        if internal.is_none() {
            self.tls_checks(req, &host, server)?;
        }
        let path_bytes = match internal {
            // the new $uri is used as it is given
            Some(i) if !i.named => Cow::Borrowed(i.uri.as_bytes()),
            _ => normalized(target.raw_path).map_err(|_| bad.clone())?,
        };
        let path = String::from_utf8_lossy(&path_bytes);
        let named = internal.filter(|i| i.named);
        // the server rewrite phase: its `return`, before any location (a
        // named location skips it)
        // a level's `return`, answered with the request's state so far
        let answer = |ret: &CompiledReturn,
                      types: &ContentTypes,
                      style: RedirectStyle,
                      captures: &mut Captures| {
            let level = Level {
                types,
                style,
                server_name: &server.primary_name,
                err_status: internal.and_then(|i| i.err_status),
            };
            self.with_decided_ctx(req, &host, server, &path, &target, captures, |ctx| {
                ret.answer(&level, ctx)
            })
        };
        if let (Some(ret), None) = (&server.ret, named) {
            return Err(answer(ret, &server.types, server.style, captures));
        }
        // locations match the decoded bytes, as nginx's PCRE2 does;
        // variables are text, where bytes that are not UTF-8 become U+FFFD
        let found = match named {
            Some(i) => match server.table.named(i.uri) {
                Some(id) => LocationMatch::Found(id),
                // ngx_http_named_location: "could not find named location"
                None => return Err(Decision::Respond(500)),
            },
            None => server
                .table
                .find(&path_bytes, &mut |re, subject| captures.run(re, subject)),
        };
        let location_id = match found {
            LocationMatch::Failed {
                prefix,
                regex,
                error,
            } => {
                scope.location = prefix;
                let pattern = match &server.table.spec(regex).kind {
                    SpecKind::Regex(re) => re.as_str(),
                    _ => "",
                };
                return Err(Decision::RegexFailed {
                    alert: error.message(&path_bytes, pattern),
                    answer: true,
                });
            }
            LocationMatch::None if server.status_page => {
                return Err(status_page(req.method, target.args))
            }
            LocationMatch::None => return Err(no_content_handler(req.method)),
            LocationMatch::Redirect(id) => {
                scope.location = Some(id);
                let loc = &server.locations[id.0 as usize];
                let mut name = loc.name.clone();
                if let Some(a) = target.args.filter(|a| !a.is_empty()) {
                    name.push('?');
                    name.push_str(a);
                }
                let location = own_location(req, &host, &server.primary_name, loc.style, name);
                return Err(Decision::Moved {
                    status: 301,
                    location,
                });
            }
            LocationMatch::Found(id) => id,
        };
        scope.location = Some(location_id);
        let loc = &server.locations[location_id.0 as usize];
        // ngx_http_core_find_config_phase: an internal location is a 404
        // to a client's request
        if loc.internal && internal.is_none() {
            return Err(Decision::Respond(404));
        }
        // nginx refuses a declared body over the location's limit before
        // doing anything else with the request (a chunked body is counted
        // while it is read, by the engine)
        let mut body = body_plan(req.headers);
        if let BodyPlan::Length(n) = body {
            if loc.max_body > 0 && n > loc.max_body {
                return Err(Decision::Respond(413));
            }
        }
        // a redirected request sends its body (the one read before the
        // redirect, nginx's `r->request_body`, or the one still to read),
        // and none when it is gone
        if internal.is_some_and(|i| !i.resend_body) {
            body = BodyPlan::None;
        }
        // the location rewrite phase: its `return`, before the content
        // handler
        if let Some(ret) = &loc.ret {
            return Err(answer(ret, &loc.types, loc.style, captures));
        }
        if loc.status_page {
            return Err(status_page(req.method, target.args));
        }
        let Some(proxy) = &loc.proxy else {
            // rginx serves no files: nginx would look in its root here
            return Err(no_content_handler(req.method));
        };
        let mut ctx = Ctx {
            rt: self,
            req,
            host: &host,
            server,
            uri: &path,
            args: target.args.unwrap_or(""),
            request_uri: target.request_uri,
            captures: std::mem::take(captures),
            proxy_host: "",
            proxy_port: 80,
            map_values: Vec::new(),
            facts: None,
            answering: None,
            sent: None,
            alerts: Vec::new(),
        };
        let mut tls_naming = None;
        let (plan_target, uri, proxy_host, proxy_port) = match proxy {
            ProxyKind::Static {
                target: t,
                host: ph,
                port,
                uri: uri_part,
                tls,
            } => {
                tls_naming = tls.as_ref();
                let uri = match uri_part {
                    // an internally redirected request has no unparsed
                    // URI: its $uri, escaped, and $args (a named location
                    // keeps the request's)
                    None if internal.is_some_and(|i| !i.named) => {
                        let mut out = String::new();
                        uri::escape_path(&path_bytes, &mut out);
                        if let Some(a) = target.args.filter(|a| !a.is_empty()) {
                            out.push('?');
                            out.push_str(a);
                        }
                        Cow::Owned(out)
                    }
                    None => Cow::Borrowed(target.request_uri),
                    Some((part, loc_len)) => {
                        let mut out = part.clone();
                        let rest = path_bytes
                            .get((*loc_len).min(path_bytes.len())..)
                            .unwrap_or_default();
                        if internal.is_some_and(|i| !i.named) || target.raw_path.contains('%') {
                            uri::escape_path(rest, &mut out);
                        } else {
                            out.push_str(&String::from_utf8_lossy(rest));
                        }
                        if let Some(a) = target.args.filter(|a| !a.is_empty()) {
                            out.push('?');
                            out.push_str(a);
                        }
                        Cow::Owned(out)
                    }
                };
                (Cow::Borrowed(t), uri, Cow::Borrowed(ph.as_str()), *port)
            }
            ProxyKind::Variable(t, naming) => {
                let mut url = String::new();
                t.render(&mut url, &mut |v, out| ctx.var(v, out));
                match self.dynamic_target(loc, &url, target.request_uri) {
                    Ok(d) => {
                        if d.https {
                            tls_naming = Some(naming);
                        }
                        (
                            Cow::Owned(d.target),
                            Cow::Owned(d.uri),
                            Cow::Owned(d.host),
                            d.port,
                        )
                    }
                    Err(failed) => {
                        *captures = std::mem::take(&mut ctx.captures);
                        return Err(failed);
                    }
                }
            }
        };
        ctx.proxy_host = &proxy_host;
        ctx.proxy_port = proxy_port;
        // the body first, as `ngx_http_proxy_create_request` measures it
        // before the headers
        let sent_body = match (&loc.set_body, loc.pass_request_body) {
            (Some(t), _) => {
                let mut value = String::new();
                t.render(&mut value, &mut |v, out| ctx.var(v, out));
                SentBody::Set(value)
            }
            (None, true) => SentBody::Client,
            (None, false) => SentBody::Withheld,
        };
        // ngx_http_proxy_handler: with proxy_request_buffering off, a
        // chunked body streams to an HTTP/1.1 upstream (to an HTTP/1.0 one
        // it is read whole for its length)
        if body == BodyPlan::Dechunk
            && !loc.body_buffering.whole
            && loc.version == "HTTP/1.1"
            && matches!(sent_body, SentBody::Client)
        {
            body = BodyPlan::Rechunk;
        }
        let mut headers: Vec<(&'a str, Cow<'a, str>)> =
            Vec::with_capacity(loc.headers.len() + req.headers.len());
        let mut length_at = None;
        for rule in &loc.headers {
            let value: Cow<'a, str> = match &rule.value {
                HeaderValue::User(t) => {
                    let mut value = String::new();
                    t.render(&mut value, &mut |v, out| ctx.var(v, out));
                    Cow::Owned(value)
                }
                HeaderValue::Default(d) => match d {
                    DefaultValue::ProxyHost => proxy_host.clone(),
                    DefaultValue::Close => Cow::Borrowed("close"),
                    DefaultValue::BodyLength => match (&sent_body, body) {
                        (SentBody::Set(value), _) => Cow::Owned(value.len().to_string()),
                        (_, BodyPlan::Length(n)) => Cow::Owned(n.to_string()),
                        (_, BodyPlan::Dechunk) => {
                            length_at = Some(headers.len());
                            Cow::Borrowed("")
                        }
                        // the engine writes its length once read whole,
                        // or `Transfer-Encoding: chunked` while it streams
                        (_, BodyPlan::Rechunk) => {
                            length_at = Some(headers.len());
                            Cow::Borrowed("")
                        }
                        (_, BodyPlan::None) => Cow::Borrowed(""),
                    },
                    DefaultValue::Chunked => Cow::Borrowed(""),
                    DefaultValue::Empty => Cow::Borrowed(""),
                },
            };
            if !value.is_empty() {
                headers.push((rule.name.as_str(), value));
            }
        }
        let mut passed = Vec::with_capacity(req.headers.len());
        if loc.pass_request_headers {
            for (i, (name, value)) in req.headers.iter().enumerate() {
                if !header_name_ok(
                    name,
                    server.underscores_in_headers,
                    server.ignore_invalid_headers,
                ) {
                    continue;
                }
                if loc.hidden.iter().any(|h| h.eq_ignore_ascii_case(name)) {
                    continue;
                }
                headers.push((name, Cow::Borrowed(value)));
                passed.push(i);
            }
        }
        let client_upgrade = req
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("upgrade"));

        let redirects =
            Redirects::for_request(&loc.redirects, loc.redirects_vary, &mut |v, out| {
                ctx.var(v, out)
            });
        let sent_method = match &loc.method {
            Some(t) => {
                let mut m = String::new();
                t.render(&mut m, &mut |v, out| ctx.var(v, out));
                Cow::Owned(m)
            }
            None => Cow::Borrowed(req.method),
        };
        // `hash KEY`: the key of the group the request goes to
        let balance_key = match &*plan_target {
            PlanTarget::Upstream(name) => self
                .upstreams
                .iter()
                .position(|u| u.eq_ignore_ascii_case(name))
                .and_then(|i| self.upstream_keys.get(i)?.as_ref())
                .map(|t| {
                    let mut key = String::new();
                    t.render(&mut key, &mut |v, out| ctx.var(v, out));
                    key
                }),
            PlanTarget::Addrs(_) | PlanTarget::Resolve { .. } => None,
        };
        let (domains, paths, cookies_vary) = &loc.cookie_rules;
        let cookie_domains =
            Redirects::for_request(domains, *cookies_vary, &mut |v, out| ctx.var(v, out));
        let cookie_paths =
            Redirects::for_request(paths, *cookies_vary, &mut |v, out| ctx.var(v, out));
        let cookie_flags =
            CookieFlags::for_request(&loc.cookie_flags, &mut |v, out| ctx.var(v, out));
        // `ngx_http_upstream_ssl_name`: the name may carry a port (from
        // `$proxy_host` or `$http_host`), which goes
        let tls = tls_naming.map(|naming| {
            let name = match &naming.name {
                Some(t) => {
                    let mut out = String::new();
                    t.render(&mut out, &mut |v, out| ctx.var(v, out));
                    Cow::Owned(out)
                }
                None => proxy_host.clone(),
            };
            let name = match crate::handlers::split_host_port(&name) {
                (host, None) if host.len() == name.len() => name,
                (host, _) => Cow::Owned(host.to_string()),
            };
            super::UpstreamTls {
                proxy: naming.proxy,
                name,
            }
        });
        let alerts = std::mem::take(&mut ctx.alerts);
        *captures = std::mem::take(&mut ctx.captures);
        Ok(Decision::Proxy(Box::new(UpstreamPlan {
            tls,
            server: server_id,
            location: location_id,
            target: plan_target,
            method: req.method,
            sent_method,
            uri,
            version: loc.version,
            headers,
            passed,
            needs_body: loc.proxy_uses_body
                && req.body.is_none()
                && !matches!(body, BodyPlan::None),
            body,
            length_at,
            max_body: loc.max_body,
            body_buffering: &loc.body_buffering,
            sent_body,
            response_buffering: &loc.response_buffering,
            ignored: loc.ignored,
            upgrade: client_upgrade,
            connect_timeout: loc.connect_timeout,
            read_timeout: loc.read_timeout,
            send_timeout: loc.send_timeout,
            buffer_size: loc.buffer_size,
            next_upstream: loc.next_upstream,
            redirects,
            cookie_domains,
            cookie_paths,
            cookie_flags,
            balance_key,
            response_hidden: loc.response_hidden.as_deref(),
            alerts,
        })))
    }
}

/// Where an `error_page` or a backend's `X-Accel-Redirect` sends a
/// request ([`Runtime::decide_redirected`]).
#[derive(Debug, Clone, Copy)]
pub struct Internal<'a> {
    /// The server the request is in.
    pub server: ServerId,
    /// The new `$uri`, or the named location's name (with its `@`).
    pub uri: &'a str,
    /// The new `$args`.
    pub args: Option<&'a str>,
    /// `uri` names a named location.
    pub named: bool,
    /// The request's body is still to be had: read whole by a proxied
    /// location before the redirect (it is sent again), or not read at
    /// all (nginx discards a body only once it answers itself).
    pub resend_body: bool,
    /// nginx's `r->err_status` after an `error_page`: the error's code or
    /// the one after `=` (`None` after a bare `=`, or another redirect);
    /// `$status` while a `return` is answered.
    pub err_status: Option<u16>,
}

impl Runtime {
    /// Runs `f` with the evaluation state of a request being decided
    /// (the groups matched so far go in and come back out).
    #[allow(clippy::too_many_arguments)]
    fn with_decided_ctx<R>(
        &self,
        req: &RequestHead<'_>,
        host: &str,
        server: &CompiledServer,
        path: &str,
        target: &uri::RequestTarget<'_>,
        captures: &mut Captures,
        f: impl FnOnce(&mut Ctx<'_>) -> R,
    ) -> R {
        let mut ctx = Ctx {
            rt: self,
            req,
            host,
            server,
            uri: path,
            args: target.args.unwrap_or(""),
            request_uri: target.request_uri,
            captures: std::mem::take(captures),
            proxy_host: "",
            proxy_port: 80,
            map_values: Vec::new(),
            facts: None,
            answering: None,
            sent: None,
            alerts: Vec::new(),
        };
        let out = f(&mut ctx);
        *captures = std::mem::take(&mut ctx.captures);
        out
    }
}

/// `$uri` for a raw path: most paths need no decoding or resolving, and
/// are used as they are without copying.
pub(super) fn normalized(raw_path: &str) -> Result<Cow<'_, [u8]>, uri::UriError> {
    let b = raw_path.as_bytes();
    let plain = !b.contains(&b'%') && !b.windows(2).any(|w| w == b"//" || w == b"/.");
    if plain {
        return Ok(Cow::Borrowed(b));
    }
    uri::normalize_path(raw_path, true).map(Cow::Owned)
}

/// The backend response headers nginx's proxy module hides by default
/// (`ngx_http_proxy_hide_headers`).
pub(super) const HIDDEN_BY_DEFAULT: &[&str] = &[
    "date",
    "server",
    "x-pad",
    "x-accel-expires",
    "x-accel-redirect",
    "x-accel-limit-rate",
    "x-accel-buffering",
    "x-accel-charset",
];

/// Whether a header of the backend's response is passed to the client
/// under nginx's default `proxy_hide_header` list.
pub fn response_header_passes(name: &str) -> bool {
    header_passes(name, None)
}

/// Whether a backend's header `name` is passed when `hidden` is the
/// location's hide list (`None`: nginx's default one): nginx writes its
/// own `Connection`,
/// `Keep-Alive`, `Transfer-Encoding` and `Content-Length`
/// (`ngx_http_upstream_headers_in`), whatever the lists say.
pub(super) fn header_passes(name: &str, hidden: Option<&[String]>) -> bool {
    const OWN: &[&str] = &[
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
    ];
    let listed = |list: &[&str]| list.iter().any(|n| n.eq_ignore_ascii_case(name));
    if listed(OWN) {
        return false;
    }
    match hidden {
        None => !listed(HIDDEN_BY_DEFAULT),
        Some(hidden) => !hidden.iter().any(|n| n.eq_ignore_ascii_case(name)),
    }
}

/// The body, from headers already checked by [`check_head`].
pub(super) fn body_plan(headers: &[(&str, &str)]) -> BodyPlan {
    if let Some((_, v)) = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        if let Ok(n) = v.parse::<u64>() {
            return BodyPlan::Length(n);
        }
    }
    if headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
    {
        return BodyPlan::Dechunk;
    }
    BodyPlan::None
}

/// The checks nginx makes on a request head before choosing a server
/// (`ngx_http_parse_request_line`, `ngx_http_process_request_headers`,
/// `ngx_http_process_request_header`): the status it answers with.
/// The status page's answer: GET and HEAD only (nginx: 405 otherwise),
/// in Prometheus' format when the arguments hold `format=prometheus`.
/// nginx's answer where no content handler is set: its static module
/// refuses methods other than GET, HEAD and POST (405) before it looks
/// for the file, which rginx never finds (404).
fn no_content_handler(method: &str) -> Decision<'static> {
    match method {
        "GET" | "HEAD" | "POST" => Decision::Respond(404),
        _ => Decision::Respond(405),
    }
}

pub(super) fn status_page(method: &str, args: Option<&str>) -> Decision<'static> {
    if method != "GET" && method != "HEAD" {
        return Decision::Respond(405);
    }
    let prometheus = args
        .unwrap_or("")
        .split('&')
        .any(|a| a == "format=prometheus");
    Decision::Status(if prometheus {
        StatusFormat::Prometheus
    } else {
        StatusFormat::Nginx
    })
}

impl Runtime {
    /// What nginx checks of a request's TLS once its head is read and its
    /// server known: a name other than the one the handshake selected a
    /// server for, on a server that verifies clients (421,
    /// `ngx_http_set_virtual_server`); no TLS on a TLS port (497); the
    /// client certificate (495, 496; `ngx_http_process_request`).
    fn tls_checks(
        &self,
        req: &RequestHead<'_>,
        host: &str,
        server: &super::CompiledServer,
    ) -> Result<(), Decision<'static>> {
        if req.connection.plain_on_tls {
            return Err(Decision::Respond(497));
        }
        let Some(tls) = req.tls else {
            return Ok(());
        };
        let verify = server.verify_client;
        if tls.sni_matched
            && verify != "off"
            && tls.server_name.as_deref().is_some_and(|sni| sni != host)
        {
            return Err(Decision::Respond(421));
        }
        if verify == "off" {
            return Ok(());
        }
        match &tls.client {
            Some(cert) => match cert.error {
                Some((code, _)) if !(verify == "optional_no_ca" && optional_error(code)) => {
                    Err(Decision::Respond(495))
                }
                _ => Ok(()),
            },
            None if verify == "on" => Err(Decision::Respond(496)),
            None => Ok(()),
        }
    }
}

/// The verification errors `optional_no_ca` lets through
/// (`ngx_ssl_verify_error_optional`): the issuer is not known.
fn optional_error(code: u32) -> bool {
    // X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, _SELF_SIGNED_CERT_IN_CHAIN,
    // _UNABLE_TO_GET_ISSUER_CERT, _UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
    // _UNABLE_TO_VERIFY_LEAF_SIGNATURE, _CERT_UNTRUSTED
    matches!(code, 18 | 19 | 2 | 20 | 21 | 27)
}
