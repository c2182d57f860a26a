//! The compiled runtime's construction and the lookups the engine makes
//! outside a request's decision: listeners, scopes, logs.

use super::*;

impl Runtime {
    /// Compiles a validated model. `hostname` is the machine's name
    /// (`$hostname`).
    pub fn new(model: &Model, hostname: &str) -> Result<Runtime, RuntimeError> {
        let names = names_of(model);
        let Some(http) = &model.http else {
            return Ok(Runtime {
                selector: ServerSelector::default(),
                servers: Vec::new(),
                maps: Vec::new(),
                upstreams: Vec::new(),
                upstream_keys: Vec::new(),
                implicit: Vec::new(),
                resolvers: Vec::new(),
                formats: Vec::new(),
                hostname: hostname.to_string(),
                error_log_sets: Vec::new(),
                upstream_headers: false,
            });
        };
        let selector = ServerSelector::new(&http.servers).map_err(RuntimeError)?;
        let formats = CompiledFormat::all(&http.log_formats, &names)?;
        let mut maps = Vec::new();
        for map in &http.maps {
            maps.push(compile_map(map, &names)?);
        }
        let mut servers = Vec::new();
        let mut types = TypesCache::new();
        for server in &http.servers {
            let mut specs = Vec::new();
            let mut locations = Vec::new();
            let mut top = Vec::new();
            for loc in &server.locations {
                top.push(compile_location(
                    loc,
                    &names,
                    &formats,
                    &mut specs,
                    &mut locations,
                    None,
                    &mut types,
                )?);
            }
            let primary_name = match server.names.first() {
                Some(ServerName::Exact(n)) => n.clone(),
                Some(ServerName::LeadingWildcard { suffix, also_bare }) => {
                    if *also_bare {
                        suffix.trim_start_matches('.').to_string()
                    } else {
                        format!("*{suffix}")
                    }
                }
                Some(ServerName::TrailingWildcard(p)) => format!("{p}*"),
                Some(ServerName::Regex(r)) => format!("~{r}"),
                None => String::new(),
            };
            servers.push(CompiledServer {
                primary_name,
                rate: RateSettings::compile(&server.settings, &names)?,
                status_page: server.settings.contains("stub_status"),
                table: LocationTable::new(specs, &top),
                locations,
                underscores_in_headers: server.settings.flag("underscores_in_headers", false),
                ignore_invalid_headers: server.settings.flag("ignore_invalid_headers", true),
                access_logs: compile_access_logs(&server.settings, &names, &formats)?,
                client: ClientSettings::compile(&server.settings),
                error_logs: error_logs_of(&server.settings),
                error_log_set: None,
                header_filter: HeaderFilter::compile(&server.settings, &names)?,
                ret: CompiledReturn::compile(&server.settings, &names)?,
                error_pages: ErrorPages::compile(&server.settings, &names)?,
                types: ContentTypes::compile(&server.settings, &mut types),
                style: RedirectStyle::compile(&server.settings),
                verify_client: match server.settings.get("ssl_verify_client").map(|s| &s.value) {
                    Some(crate::model::Value::Choice(mode)) => mode,
                    _ => "off",
                },
            });
        }
        let error_log_sets = intern_error_logs(&mut servers);
        let resolvers = intern_resolvers(&mut servers);
        let upstream_keys: Vec<Option<Template>> = http
            .upstreams
            .iter()
            .map(|u| match &u.method {
                crate::model::Balancing::Hash { key, .. } => {
                    Template::compile(key, &names).map(Some)
                }
                _ => Ok(None),
            })
            .collect::<Result<_, _>>()?;
        mark_body_uses(&mut servers, &maps, &upstream_keys);
        Ok(Runtime {
            implicit: http.implicit_upstreams(),
            resolvers,
            selector,
            error_log_sets,
            servers,
            maps,
            upstream_keys,
            upstreams: http
                .upstreams
                .iter()
                .map(|u| u.name.to_ascii_lowercase())
                .collect(),
            formats,
            upstream_headers: names.upstream_headers.get(),
            hostname: hostname.to_string(),
        })
    }

    /// The distinct `resolver` directives: the engine makes a resolver
    /// (with its cache) for each; [`PlanTarget::Resolve`] names one by its
    /// place here.
    pub fn resolvers(&self) -> &[std::sync::Arc<crate::model::ResolverConf>] {
        &self.resolvers
    }

    /// Addresses to listen on.
    pub fn listen_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.selector.listen_addrs()
    }

    /// Whether a listening socket of this configuration takes connections
    /// to `local` (the address a connection was accepted on).
    pub fn listens_on(&self, local: SocketAddr) -> bool {
        self.selector.socket_for(local).is_some()
    }

    /// The position of the listening socket a connection to `local` came
    /// in on, among [`ServerSelector::new`]'s sockets for the same model
    /// (what a TLS plan built from the model is indexed by).
    pub fn socket_index(&self, local: SocketAddr) -> Option<usize> {
        self.selector.socket_for(local)
    }

    /// The default server of the socket a connection to `local` came in
    /// on.
    pub fn default_server_of(&self, local: SocketAddr) -> ServerId {
        let socket = self.selector.socket_for(local).unwrap_or(0);
        self.selector.default_server(socket)
    }

    /// The server a TLS client names in its hello (SNI) on the address it
    /// reached, if one has the name (`ngx_http_ssl_servername`: the name
    /// checked as a host, then looked up as `Host` is; a regex name
    /// matches without captures). An address with one server has no names
    /// to look up (`ngx_http_optimize_servers` builds none): no server is
    /// named then.
    pub fn sni_server(&self, local: SocketAddr, name: &str) -> Option<ServerId> {
        let socket = self.selector.socket_for(local).unwrap_or(0);
        if self.selector.member_count(socket) < 2 {
            return None;
        }
        let host = crate::select::normalize_host(name)?;
        let mut run = |re: &crate::pcre::Pcre, subject: &[u8]| re.is_match(subject);
        self.selector.find(socket, &host, &mut run).ok().flatten()
    }

    /// Whether `server` drops a request header line for its name
    /// (`ignore_invalid_headers`, `underscores_in_headers`), as nginx's
    /// header parser does, with an info line for each.
    pub fn drops_header(&self, server: ServerId, name: &str) -> bool {
        self.servers.get(server.0 as usize).is_some_and(|s| {
            s.ignore_invalid_headers
                && !header_name_ok(name, s.underscores_in_headers, s.ignore_invalid_headers)
        })
    }

    /// The primary `server_name` of a server (`$server_name`).
    pub fn server_name(&self, server: ServerId) -> &str {
        self.servers
            .get(server.0 as usize)
            .map_or("", |s| s.primary_name.as_str())
    }

    /// The `access_log` targets a request in `scope` is logged to.
    fn access_logs(&self, scope: LogScope) -> &[super::CompiledAccessLog] {
        let Some(srv) = self.servers.get(scope.server.0 as usize) else {
            return &[];
        };
        match scope.location {
            Some(id) => srv
                .locations
                .get(id.0 as usize)
                .map_or(&[], |l| l.access_logs.as_slice()),
            None => &srv.access_logs,
        }
    }

    /// The client settings for a request in `scope` (its location's, else
    /// its server's).
    pub fn client_settings(&self, scope: LogScope) -> ClientSettings {
        let Some(srv) = self.servers.get(scope.server.0 as usize) else {
            return ClientSettings::compile(&Settings::default());
        };
        scope
            .location
            .and_then(|id| srv.locations.get(id.0 as usize))
            .map_or(srv.client, |l| l.client)
    }

    /// The client settings of the default server of the socket a
    /// connection to `local` arrived on: what applies before a request
    /// says which server it is for.
    pub fn socket_client_settings(&self, local: SocketAddr) -> ClientSettings {
        self.client_settings(self.socket_scope(local))
    }

    /// The default server of the socket a connection to `local` arrived
    /// on, as a scope: whose logs take what happens before a request says
    /// which server it is for.
    pub fn socket_scope(&self, local: SocketAddr) -> LogScope {
        let socket = self.selector.socket_for(local).unwrap_or(0);
        LogScope {
            server: self.selector.default_server(socket),
            location: None,
        }
    }

    /// The distinct `error_log` lists of the http, server and location
    /// levels (the main level's is the model's own).
    pub fn error_log_sets(&self) -> &[Vec<crate::model::ErrorLog>] {
        &self.error_log_sets
    }

    /// The index in [`Runtime::error_log_sets`] of the list errors of a
    /// request in `scope` go to; `None`: the main level's.
    pub fn error_log_set(&self, scope: LogScope) -> Option<usize> {
        let srv = self.servers.get(scope.server.0 as usize)?;
        match scope
            .location
            .and_then(|id| srv.locations.get(id.0 as usize))
        {
            Some(loc) => loc.error_log_set,
            None => srv.error_log_set,
        }
    }

    /// Whether a `log_format` reads `$sent_http_NAME`: then the engine
    /// keeps the head it wrote for the log.
    pub fn logs_sent_headers(&self) -> bool {
        self.formats.iter().any(|f| {
            f.template
                .reads(|v| matches!(v, Var::Response(n) if n.starts_with("sent_http_")))
        })
    }

    /// Whether some value reads `$upstream_http_NAME`: then the engine
    /// keeps each upstream answer's head for the request.
    pub fn wants_upstream_headers(&self) -> bool {
        self.upstream_headers
    }

    /// The access log files named without variables, each once with its
    /// buffer: opened at start, before the process gives up root
    /// (`user`), as nginx's master does.
    pub fn static_access_logs(&self) -> Vec<(String, Option<crate::model::LogBuffer>)> {
        let mut files: Vec<(String, Option<crate::model::LogBuffer>)> = Vec::new();
        let levels = self.servers.iter().flat_map(|s| {
            std::iter::once(&s.access_logs).chain(s.locations.iter().map(|l| &l.access_logs))
        });
        for log in levels.flatten() {
            let Some(path) = log.path.as_literal() else {
                continue;
            };
            match files.iter_mut().find(|(p, _)| p == path) {
                // the file's buffer, whichever `access_log` gave it
                Some((_, buffer)) => *buffer = buffer.or(log.buffer),
                None => files.push((path.to_string(), log.buffer)),
            }
        }
        files
    }

    /// The temp directories bodies may be written to
    /// (`client_body_temp_path` and `proxy_temp_path` of the proxying
    /// locations), each once:
    /// created at start and given to `user`, as nginx's
    /// `ngx_create_paths` does.
    pub fn temp_paths(&self) -> Vec<&crate::model::TempPath> {
        let mut paths: Vec<&crate::model::TempPath> = Vec::new();
        let locations = self.servers.iter().flat_map(|s| s.locations.iter());
        for loc in locations.filter(|l| l.proxy.is_some()) {
            for path in [
                &loc.body_buffering.temp_path,
                &loc.response_buffering.temp_path,
            ] {
                if !paths.contains(&path) {
                    paths.push(path);
                }
            }
        }
        paths
    }

    /// Whether a request in `scope` writes any access log.
    pub fn has_access_logs(&self, scope: LogScope) -> bool {
        !self.access_logs(scope).is_empty()
    }

    /// The access log lines for a finished request, one for each
    /// `access_log` of its scope, written as nginx does (values escaped
    /// by the format's `escape=`). `alerts` gets nginx's `[alert]` lines
    /// for regex matches that failed on the way.
    pub fn access_log_lines(
        &self,
        scope: LogScope,
        req: &RequestHead<'_>,
        matched: &Matched,
        facts: &ResponseFacts,
        sent: Option<&dyn SentHeaders>,
        alerts: &mut Vec<String>,
    ) -> Vec<AccessLine> {
        let logs = self.access_logs(scope);
        if logs.is_empty() {
            return Vec::new();
        }
        self.with_request_ctx(scope, req, matched, Some(facts), sent, |ctx| {
            let mut lines = Vec::new();
            for log in logs {
                let Some(format) = self.formats.get(log.format) else {
                    continue;
                };
                // `if=`: "0" or empty skips the line (ngx_http_log_handler)
                if let Some(condition) = &log.condition {
                    let mut value = String::new();
                    condition.render(&mut value, &mut |v, out| ctx.var(v, out));
                    if value.is_empty() || value == "0" {
                        continue;
                    }
                }
                let mut path = String::new();
                log.path.render(&mut path, &mut |v, out| ctx.var(v, out));
                let mut line = Vec::new();
                let slack = format.render(ctx, &mut line);
                line.push(b'\n');
                let reserve = line.len() + slack;
                lines.push(AccessLine {
                    path,
                    line,
                    reserve,
                });
            }
            alerts.append(&mut ctx.alerts);
            lines
        })
        .unwrap_or_default()
    }

    /// The `error_page` that answers `status` for a request in `scope`
    /// (`None`: nginx's own page stands). A backend's answer
    /// (`from_backend`) is intercepted only where `proxy_intercept_errors`
    /// is on (`ngx_http_upstream_intercept_errors`).
    pub fn error_page(
        &self,
        scope: LogScope,
        req: &RequestHead<'_>,
        matched: &Matched,
        status: u16,
        from_backend: bool,
    ) -> Option<ErrorPageHit> {
        let srv = self.servers.get(scope.server.0 as usize)?;
        let loc = scope
            .location
            .and_then(|id| srv.locations.get(id.0 as usize));
        if from_backend && !loc.is_some_and(|l| l.intercept_errors) {
            return None;
        }
        let pages = match loc {
            Some(l) => l.error_pages.as_ref(),
            None => srv.error_pages.as_ref(),
        }?;
        if !pages.covers(status) {
            return None;
        }
        self.with_request_ctx(scope, req, matched, None, None, |ctx| {
            pages.hit(status, ctx)
        })
        .flatten()
    }

    /// A `Location` a backend sent (after `proxy_redirect`) as nginx's
    /// header filter writes it for a request in `scope`: one that starts
    /// with `/` made absolute (`absolute_redirect`, `port_in_redirect`,
    /// `server_name_in_redirect`), others as they are.
    pub fn own_location(
        &self,
        scope: LogScope,
        req: &RequestHead<'_>,
        value: String,
    ) -> OwnLocation {
        let Some(srv) = self.servers.get(scope.server.0 as usize) else {
            return OwnLocation {
                value,
                own_place: false,
            };
        };
        let style = scope
            .location
            .and_then(|id| srv.locations.get(id.0 as usize))
            .map_or(srv.style, |l| l.style);
        let target_host = uri::parse_target(req.target).ok().and_then(|t| t.host);
        let host = request_host(req, target_host);
        own_location(req, &host, &srv.primary_name, style, value)
    }

    /// What nginx's headers filter (`add_header`, `expires`) does to the
    /// response of `status` a request in `scope` gets at `now`; `sent`
    /// reads the response's own lines. Empty (no allocation) where neither applies.
    pub fn header_edits(
        &self,
        scope: LogScope,
        req: &RequestHead<'_>,
        matched: &Matched,
        status: u16,
        now: SystemTime,
        sent: &dyn SentHeaders,
    ) -> Vec<HeaderEdit<'_>> {
        let Some(srv) = self.servers.get(scope.server.0 as usize) else {
            return Vec::new();
        };
        let filter = match scope.location {
            Some(id) => srv
                .locations
                .get(id.0 as usize)
                .and_then(|l| l.header_filter.as_ref()),
            None => srv.header_filter.as_ref(),
        };
        let Some(filter) = filter else {
            return Vec::new();
        };
        let last_modified = sent
            .sent("last-modified")
            .and_then(|v| httpdate::parse_http_date(v.trim()).ok());
        let facts = ResponseFacts {
            status,
            body_bytes_sent: 0,
            bytes_sent: 0,
            request_length: 0,
            request_time: Duration::ZERO,
        };
        self.with_request_ctx(scope, req, matched, Some(&facts), Some(sent), |ctx| {
            filter.edits(status, now, last_modified, ctx)
        })
        .unwrap_or_default()
    }

    /// Runs `f` with the evaluation state of a request already decided
    /// (its variables, the groups of its last regex match, what is known
    /// of its response). A request refused for its target gets what could
    /// be read of it.
    pub(super) fn with_request_ctx<R>(
        &self,
        scope: LogScope,
        req: &RequestHead<'_>,
        matched: &Matched,
        facts: Option<&ResponseFacts>,
        sent: Option<&dyn SentHeaders>,
        f: impl FnOnce(&mut Ctx<'_>) -> R,
    ) -> Option<R> {
        let srv = self.servers.get(scope.server.0 as usize)?;
        let target = uri::parse_target(req.target).unwrap_or(uri::RequestTarget {
            host: None,
            raw_path: "",
            args: None,
            request_uri: req.target,
            empty_path: false,
        });
        let host = request_host(req, target.host);
        let path = normalized(target.raw_path).unwrap_or(Cow::Borrowed(target.raw_path.as_bytes()));
        let path = String::from_utf8_lossy(&path);
        let (path, args) = match &matched.redirected {
            Some((uri, args)) => (Cow::Borrowed(uri.as_str()), args.as_deref()),
            None => (path, target.args),
        };
        let mut ctx = Ctx {
            rt: self,
            req,
            host: &host,
            server: srv,
            uri: &path,
            args: args.unwrap_or(""),
            request_uri: target.request_uri,
            captures: matched.captures.clone(),
            proxy_host: "",
            proxy_port: 80,
            map_values: Vec::new(),
            facts,
            answering: None,
            sent,
            alerts: Vec::new(),
        };
        Some(f(&mut ctx))
    }
}

/// Marks the locations whose request upstream uses the body's variables,
/// directly or through maps: nginx evaluates that request once it has
/// read the body (`ngx_http_proxy_create_request` runs after
/// `ngx_http_read_client_request_body`), so the engine decides such a
/// request again once the body is read.
fn mark_body_uses(
    servers: &mut [CompiledServer],
    maps: &[CompiledMap],
    upstream_keys: &[Option<Template>],
) {
    // maps may use maps; nginx refuses a map that uses itself at run time,
    // here the depth is bounded instead
    fn uses(t: &Template, maps: &[CompiledMap], depth: u8) -> bool {
        t.vars().any(|v| match v {
            Var::RequestBody | Var::RequestBodyFile => true,
            Var::Map(i) if depth < 8 => maps.get(*i as usize).is_some_and(|m| {
                uses(&m.source, maps, depth + 1)
                    || m.default.iter().any(|d| uses(d, maps, depth + 1))
                    || m.exact.values().any(|d| uses(d, maps, depth + 1))
                    || m.leading
                        .iter()
                        .chain(&m.trailing)
                        .any(|(_, d)| uses(d, maps, depth + 1))
                    || m.regexes.iter().any(|(_, d)| uses(d, maps, depth + 1))
            }),
            _ => false,
        })
    }
    let keys_use = upstream_keys.iter().flatten().any(|k| uses(k, maps, 0));
    for loc in servers.iter_mut().flat_map(|s| s.locations.iter_mut()) {
        let Some(proxy) = &loc.proxy else {
            continue;
        };
        let templates = loc
            .headers
            .iter()
            .filter_map(|h| match &h.value {
                HeaderValue::User(t) => Some(t),
                HeaderValue::Default(_) => None,
            })
            .chain(&loc.set_body)
            .chain(&loc.method)
            .chain(match proxy {
                ProxyKind::Variable(t, _) => Some(t),
                ProxyKind::Static { .. } => None,
            });
        loc.proxy_uses_body = keys_use || templates.into_iter().any(|t| uses(t, maps, 0));
    }
}

/// Gives each location the index of its `resolver` among the distinct
/// ones (each directive is one resolver in nginx, shared by the levels
/// that inherit it).
fn intern_resolvers(
    servers: &mut [CompiledServer],
) -> Vec<std::sync::Arc<crate::model::ResolverConf>> {
    let mut distinct: Vec<std::sync::Arc<crate::model::ResolverConf>> = Vec::new();
    for loc in servers.iter_mut().flat_map(|s| s.locations.iter_mut()) {
        let Some(conf) = loc.resolver_conf.take() else {
            continue;
        };
        let index = match distinct
            .iter()
            .position(|d| std::sync::Arc::ptr_eq(d, &conf))
        {
            Some(i) => i,
            None => {
                distinct.push(conf);
                distinct.len() - 1
            }
        };
        loc.resolver = Some(index);
    }
    distinct
}
