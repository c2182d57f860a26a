//! Compiling a validated model's servers, locations, logs and maps into
//! the lookup structures a request is evaluated against (once per load).

use super::*;

pub(super) fn names_of(model: &Model) -> Names {
    let mut names = Names::default();
    let Some(http) = &model.http else {
        return names;
    };
    for (i, map) in http.maps.iter().enumerate() {
        // a later map of the same variable wins, as in nginx
        names.maps.insert(map.variable.clone(), i as u32);
    }
    let mut patterns: Vec<(&str, bool)> = Vec::new();
    for server in &http.servers {
        for name in &server.names {
            if let ServerName::Regex(r) = name {
                patterns.push((r, crate::select::caseless_name(r)));
            }
        }
        fn redirect_regexes<'a>(settings: &'a Settings, out: &mut Vec<(&'a str, bool)>) {
            for rule in settings.redirects().flatten().unwrap_or_default() {
                if let RedirectPattern::Regex { pattern, caseless } = &rule.pattern {
                    out.push((pattern, *caseless));
                }
            }
        }
        redirect_regexes(&server.settings, &mut patterns);
        fn walk<'a>(locs: &'a [LocationConf], out: &mut Vec<(&'a str, bool)>) {
            for l in locs {
                redirect_regexes(&l.settings, out);
                if let LocationMatcher::Regex {
                    pattern,
                    case_insensitive,
                } = &l.matcher
                {
                    out.push((pattern, *case_insensitive));
                }
                walk(&l.nested, out);
            }
        }
        walk(&server.locations, &mut patterns);
    }
    for map in &http.maps {
        for e in &map.entries {
            if let Some(p) = e.key.strip_prefix("~*") {
                patterns.push((p, true));
            } else if let Some(p) = e.key.strip_prefix('~') {
                patterns.push((p, false));
            }
        }
    }
    for (p, caseless) in patterns {
        // a pattern without `(?` has no named group: no second compile
        if p.contains("(?") {
            names
                .captures
                .extend(crate::pcre::capture_names(p, caseless));
        }
    }
    names
}

pub(super) fn compile_location(
    loc: &LocationConf,
    names: &Names,
    formats: &[CompiledFormat],
    specs: &mut Vec<LocationSpec>,
    out: &mut Vec<CompiledLocation>,
    parent: Option<&RedirectParent<'_>>,
    types: &mut TypesCache,
) -> Result<LocationId, RuntimeError> {
    let id = LocationId(specs.len() as u32);
    let kind = match &loc.matcher {
        LocationMatcher::Exact(n) => SpecKind::Exact(n.clone()),
        LocationMatcher::Prefix { path, no_regex } => SpecKind::Prefix {
            name: path.clone(),
            no_regex: *no_regex,
        },
        LocationMatcher::Regex {
            pattern,
            case_insensitive,
        } => SpecKind::Regex(Pcre::compile(pattern, *case_insensitive).map_err(RuntimeError)?),
        LocationMatcher::Named(n) => SpecKind::Named(n.clone()),
    };
    let name = loc.matcher.name().to_string();
    let naming = match &loc.proxy_pass {
        Some(pp) => Some(super::TlsNaming {
            proxy: pp.seq,
            name: match loc.settings.text("proxy_ssl_name") {
                Some(text) => Some(Template::compile(text, names)?),
                None => None,
            },
        }),
        None => None,
    };
    let tls = naming.clone().filter(|_| {
        loc.proxy_pass
            .as_ref()
            .is_some_and(|pp| pp.scheme == "https")
    });
    let default_port = match &loc.proxy_pass {
        Some(pp) if pp.scheme == "https" => 443,
        _ => 80,
    };
    let proxy = match &loc.proxy_pass {
        None => None,
        Some(pp) => Some(match &pp.target {
            ProxyTarget::Variable => ProxyKind::Variable(
                Template::compile(pp.url.as_str(), names)?,
                naming.clone().unwrap_or(super::TlsNaming {
                    proxy: pp.seq,
                    name: None,
                }),
            ),
            ProxyTarget::Upstream(u) => ProxyKind::Static {
                target: PlanTarget::Upstream(u.clone()),
                host: u.clone(),
                port: default_port,
                uri: pp.uri.clone().map(|u| (u, name.len())),
                tls,
            },
            // nginx's `Host` for a unix socket is `localhost`, with no
            // `$proxy_port` (`ngx_http_proxy_set_vars`)
            ProxyTarget::Unix(path) => ProxyKind::Static {
                target: PlanTarget::Addrs(vec![crate::peer::PeerAddr::Unix(path.clone())]),
                host: "localhost".to_string(),
                port: 0,
                uri: pp.uri.clone().map(|u| (u, name.len())),
                tls,
            },
            ProxyTarget::Host { host, port, addrs } => ProxyKind::Static {
                target: PlanTarget::Addrs(addrs.clone()),
                host: if pp.explicit_port && *port != default_port {
                    let shown = if host.contains(':') {
                        format!("[{host}]")
                    } else {
                        host.clone()
                    };
                    format!("{shown}:{port}")
                } else {
                    host.clone()
                },
                port: *port,
                uri: pp.uri.clone().map(|u| (u, name.len())),
                tls,
            },
        }),
    };
    let auto_redirect = proxy.is_some()
        && name.ends_with('/')
        && matches!(
            loc.matcher,
            LocationMatcher::Exact(_) | LocationMatcher::Prefix { .. }
        );
    specs.push(LocationSpec {
        kind,
        nested: Vec::new(),
        auto_redirect,
    });
    // nginx's content handler is the later of proxy_pass and stub_status
    // (the automatic redirect stays with proxy_pass either way)
    let status_page = match loc.settings.get("stub_status").map(|s| &s.value) {
        Some(crate::model::Value::Number(seq)) => loc
            .proxy_pass
            .as_ref()
            .is_none_or(|pp| *seq > u64::from(pp.seq)),
        _ => false,
    };
    let proxy = if status_page { None } else { proxy };
    let mut compiled = compile_settings(&name, proxy, &loc.settings, names, formats, types)?;
    compiled.status_page = status_page;
    let effective = effective_redirects(loc, parent, names)?;
    if compiled.proxy.is_some() {
        if let RedirectState::Rules(rules) = &effective {
            compiled.redirects_vary = rules.iter().any(CompiledRedirect::varies);
            compiled.redirects = rules.clone();
        }
    }
    out.push(compiled);
    for nested in &loc.nested {
        let inherited = RedirectParent {
            setting: loc.settings.get("proxy_redirect"),
            state: effective.clone(),
        };
        let child = compile_location(nested, names, formats, specs, out, Some(&inherited), types)?;
        specs[id.0 as usize].nested.push(child);
    }
    Ok(id)
}

/// A level's `proxy_cookie_domain` and `proxy_cookie_path` rules (`off`
/// and none alike: no rewriting).
fn cookie_rules(
    settings: &Settings,
    names: &Names,
) -> Result<(Vec<CompiledRedirect>, Vec<CompiledRedirect>, bool), RuntimeError> {
    let rules = |name: &str| match settings.get(name).map(|s| &s.value) {
        Some(crate::model::Value::Redirects(Some(rules))) => rules.as_slice(),
        _ => &[],
    };
    let domains = rules("proxy_cookie_domain")
        .iter()
        .map(|r| CompiledRedirect::compile_domain(r, names))
        .collect::<Result<Vec<_>, _>>()?;
    let paths = rules("proxy_cookie_path")
        .iter()
        .map(|r| CompiledRedirect::compile(r, names))
        .collect::<Result<Vec<_>, _>>()?;
    let vary = domains.iter().chain(&paths).any(CompiledRedirect::varies);
    Ok((domains, paths, vary))
}

/// `ngx_http_upstream_hide_headers_hash`: the defaults and the level's
/// `proxy_hide_header` names, less its `proxy_pass_header` ones.
fn response_hidden(settings: &Settings) -> Option<Vec<String>> {
    let words = |name: &str| match settings.get(name).map(|s| &s.value) {
        Some(crate::model::Value::Words(w)) => Some(w.as_slice()),
        _ => None,
    };
    let (hide, pass) = (words("proxy_hide_header"), words("proxy_pass_header"));
    if hide.is_none() && pass.is_none() {
        return None;
    }
    let mut hidden: Vec<String> = HIDDEN_BY_DEFAULT.iter().map(|s| s.to_string()).collect();
    for name in hide.unwrap_or_default() {
        let name = name.to_ascii_lowercase();
        if !hidden.contains(&name) {
            hidden.push(name);
        }
    }
    let pass = pass.unwrap_or_default();
    hidden.retain(|h| !pass.iter().any(|p| p.eq_ignore_ascii_case(h)));
    Some(hidden)
}

/// A location's `proxy_redirect` after nginx's merge.
#[derive(Debug, Clone)]
pub(super) enum RedirectState {
    /// Nothing set at any level, and no `proxy_pass` URL to default to.
    Unset,
    /// `proxy_redirect off`.
    Off,
    /// The rules in order (`default`'s among them, or the implicit one).
    Rules(Vec<CompiledRedirect>),
}

/// What a nested location inherits of `proxy_redirect` from the one
/// around it: nginx merges the enclosing location first, so its implicit
/// `default` (for its own `proxy_pass`) is what the nested one inherits.
pub(super) struct RedirectParent<'a> {
    /// The enclosing location's setting (to tell an inherited one from a
    /// nested location's own).
    pub(super) setting: Option<&'a crate::model::Setting>,
    /// Its effective rules.
    pub(super) state: RedirectState,
}

/// `ngx_http_proxy_merge_loc_conf` for `proxy_redirect`: the level's own
/// rules, else the inherited ones, else, with a `proxy_pass` URL without
/// variables, `default`: the URL as written to the location's name, or,
/// without a URI part, the URL and `/` to `/`.
fn effective_redirects(
    loc: &LocationConf,
    parent: Option<&RedirectParent<'_>>,
    names: &Names,
) -> Result<RedirectState, RuntimeError> {
    let setting = loc.settings.get("proxy_redirect");
    let inherited = match (setting, parent.and_then(|p| p.setting)) {
        (Some(own), Some(theirs)) => std::ptr::eq(own, theirs),
        _ => setting.is_none(),
    };
    let state = match (inherited, parent) {
        (true, Some(parent)) => parent.state.clone(),
        _ => match loc.settings.redirects() {
            None => RedirectState::Unset,
            Some(None) => RedirectState::Off,
            Some(Some(rules)) => RedirectState::Rules(
                rules
                    .iter()
                    .map(|r| CompiledRedirect::compile(r, names))
                    .collect::<Result<_, _>>()?,
            ),
        },
    };
    if !matches!(state, RedirectState::Unset) {
        return Ok(state);
    }
    let Some(pp) = loc
        .proxy_pass
        .as_ref()
        .filter(|pp| pp.target != ProxyTarget::Variable)
    else {
        return Ok(state);
    };
    let (pattern, replacement) = pp.default_redirect(loc.matcher.name());
    Ok(RedirectState::Rules(vec![CompiledRedirect::Prefix {
        pattern: Template::literal(&pattern),
        replacement: Template::literal(&replacement),
    }]))
}

pub(super) fn compile_settings(
    name: &str,
    proxy: Option<ProxyKind>,
    settings: &Settings,
    names: &Names,
    formats: &[CompiledFormat],
    types: &mut TypesCache,
) -> Result<CompiledLocation, RuntimeError> {
    let mut headers = Vec::new();
    for h in settings.proxy_headers() {
        headers.push(HeaderRule {
            name: h.name.as_str().to_string(),
            value: HeaderValue::User(Template::compile(h.value.as_str(), names)?),
        });
    }
    for (default_name, value) in DEFAULT_HEADERS {
        if !headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case(default_name))
        {
            headers.push(HeaderRule {
                name: default_name.to_string(),
                value: HeaderValue::Default(*value),
            });
        }
    }
    let hidden = headers
        .iter()
        .map(|h| h.name.to_ascii_lowercase())
        .collect();
    let version = if settings.proxy_http_version() == "1.1" {
        "HTTP/1.1"
    } else {
        "HTTP/1.0"
    };
    let sixty = Duration::from_secs(60);
    Ok(CompiledLocation {
        name: name.to_string(),
        status_page: false,
        proxy,
        version,
        headers,
        hidden,
        pass_request_headers: settings.flag("proxy_pass_request_headers", true),
        access_logs: compile_access_logs(settings, names, formats)?,
        client: ClientSettings::compile(settings),
        error_logs: error_logs_of(settings),
        error_log_set: None,
        redirects: Vec::new(),
        redirects_vary: false,
        cookie_rules: cookie_rules(settings, names)?,
        cookie_flags: CompiledCookieFlags::compile_all(settings, names)?,
        header_filter: HeaderFilter::compile(settings, names)?,
        ret: CompiledReturn::compile(settings, names)?,
        error_pages: ErrorPages::compile(settings, names)?,
        internal: settings.flag("internal", false),
        intercept_errors: settings.flag("proxy_intercept_errors", false),
        response_hidden: response_hidden(settings),
        method: match settings.text("proxy_method") {
            Some(m) => Some(Template::compile(m, names)?),
            None => None,
        },
        types: ContentTypes::compile(settings, types),
        style: RedirectStyle::compile(settings),
        resolver: None,
        proxy_uses_body: false,
        rate: RateSettings::compile(settings, names)?,
        resolver_conf: match settings.get("resolver").map(|s| &s.value) {
            Some(crate::model::Value::Resolver(r)) => Some(r.clone()),
            _ => None,
        },
        resolver_timeout: settings.time("resolver_timeout", Duration::from_secs(30)),
        max_body: match settings.get("client_max_body_size").map(|s| &s.value) {
            Some(crate::model::Value::Size(n)) => *n,
            _ => 1024 * 1024,
        },
        body_buffering: BodyBuffering::compile(settings),
        pass_request_body: settings.flag("proxy_pass_request_body", true),
        set_body: match settings.text("proxy_set_body") {
            Some(b) => Some(Template::compile(b, names)?),
            None => None,
        },
        response_buffering: ResponseBuffering::compile(settings),
        ignored: IgnoredHeaders::compile(settings),
        connect_timeout: settings.time("proxy_connect_timeout", sixty),
        read_timeout: settings.time("proxy_read_timeout", sixty),
        send_timeout: settings.time("proxy_send_timeout", sixty),
        buffer_size: match settings.get("proxy_buffer_size").map(|s| &s.value) {
            Some(crate::model::Value::Size(n)) => *n,
            _ => 4096,
        },
        next_upstream: {
            let words: &[String] = match settings.get("proxy_next_upstream").map(|s| &s.value) {
                Some(crate::model::Value::Words(w)) => w,
                _ => &[],
            };
            // nginx's default is `error timeout`; `off` clears everything
            let off = words.iter().any(|x| x == "off");
            let named = |w: &str| !off && words.iter().any(|x| x == w);
            let by_default = |w: &str| words.is_empty() || named(w);
            let mut statuses = 0u8;
            for (i, status) in NextUpstream::STATUSES.iter().enumerate() {
                if named(&format!("http_{status}")) {
                    statuses |= 1 << i;
                }
            }
            NextUpstream {
                error: by_default("error"),
                timeout: by_default("timeout"),
                invalid_header: named("invalid_header"),
                statuses,
                non_idempotent: named("non_idempotent"),
                tries: match settings.get("proxy_next_upstream_tries").map(|s| &s.value) {
                    Some(crate::model::Value::Number(n)) => *n,
                    _ => 0,
                },
                time_limit: settings.time("proxy_next_upstream_timeout", Duration::ZERO),
            }
        },
    })
}

/// A level's `access_log` targets: path and index into the formats.
/// A level's `error_log` list (inheritance already applied).
pub(super) fn error_logs_of(settings: &Settings) -> Vec<crate::model::ErrorLog> {
    match settings.get("error_log").map(|s| &s.value) {
        Some(crate::model::Value::ErrorLogs(logs)) => logs.clone(),
        _ => Vec::new(),
    }
}

/// Gives every server and location the index of its `error_log` list in
/// one shared list of distinct lists.
pub(super) fn intern_error_logs(
    servers: &mut [CompiledServer],
) -> Vec<Vec<crate::model::ErrorLog>> {
    let mut sets: Vec<Vec<crate::model::ErrorLog>> = Vec::new();
    let mut intern = |logs: &Vec<crate::model::ErrorLog>| -> Option<usize> {
        if logs.is_empty() {
            return None;
        }
        Some(sets.iter().position(|s| s == logs).unwrap_or_else(|| {
            sets.push(logs.clone());
            sets.len() - 1
        }))
    };
    for server in servers.iter_mut() {
        server.error_log_set = intern(&server.error_logs);
        for loc in server.locations.iter_mut() {
            loc.error_log_set = intern(&loc.error_logs);
        }
    }
    sets
}

pub(super) fn compile_map(map: &MapConf, names: &Names) -> Result<CompiledMap, RuntimeError> {
    let mut exact =
        foldhash::HashMap::with_capacity_and_hasher(map.entries.len(), Default::default());
    let mut compiled = CompiledMap {
        source: Template::compile(&map.source, names)?,
        hostnames: map.hostnames,
        exact: std::sync::Arc::default(),
        leading: Vec::new(),
        trailing: Vec::new(),
        regexes: Vec::new(),
        default: map
            .default
            .as_deref()
            .map(|d| Template::compile(d, names))
            .transpose()?,
    };
    for e in &map.entries {
        let value = Template::compile(&e.value, names)?;
        if let Some(p) = e.key.strip_prefix("~*") {
            compiled
                .regexes
                .push((Pcre::compile(p, true).map_err(RuntimeError)?, value));
        } else if let Some(p) = e.key.strip_prefix('~') {
            compiled
                .regexes
                .push((Pcre::compile(p, false).map_err(RuntimeError)?, value));
        } else {
            let key = e
                .key
                .strip_prefix('\\')
                .unwrap_or(&e.key)
                .to_ascii_lowercase();
            if map.hostnames {
                if let Some(s) = key.strip_prefix('*') {
                    compiled.leading.push((s.to_string(), value));
                    continue;
                }
                if let Some(bare) = key.strip_prefix('.') {
                    exact.entry(bare.to_string()).or_insert(value.clone());
                    compiled.leading.push((key.clone(), value));
                    continue;
                }
                if let Some(p) = key.strip_suffix('*') {
                    compiled.trailing.push((p.to_string(), value));
                    continue;
                }
            }
            exact.entry(key).or_insert(value);
        }
    }
    compiled.exact = std::sync::Arc::new(exact);
    // longest wildcard first, as nginx's wildcard hashes pick it
    compiled
        .leading
        .sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    compiled
        .trailing
        .sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    Ok(compiled)
}
