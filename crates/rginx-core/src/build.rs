//! Building the model from the syntax tree: context and argument checks
//! driven by the directive table, value parsing, and the checks nginx makes
//! after a block is read (upstreams, duplicate locations, variables).

use std::collections::HashMap;
use std::net::SocketAddr;

use rginx_config::{Directive, Span};

use crate::diag::Diagnostic;
use crate::handlers::addr_text;
use crate::model::{
    HttpConf, LocationConf, Model, ProxyPass, ProxyTarget, ServerConf, ServerName, Setting,
    Settings, UpstreamConf, Value,
};
use crate::names::is_nginx_directive;
use crate::resolve::Resolver;
use crate::table::{lookup, Arity, Body, Context, DirectiveSpec, Kind, Status};
use crate::values::{parse_flag, parse_number, parse_offset, parse_size, parse_time};
use crate::vars::{for_each_variable, is_builtin};

/// Options for [`build`].
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Port of a server without `listen` (nginx: 80 as root, else 8000).
    pub default_listen_port: u16,
    /// Whether the process runs as root: then `user` is checked and
    /// applied, otherwise it is ignored with nginx's warning.
    pub as_root: bool,
    /// The prefix relative paths of `pid`, `error_log`, `access_log` and
    /// the temp paths resolve against (`-p`; nginx's `ngx_conf_full_name`
    /// with the cycle's prefix). Ends with `/`.
    pub prefix: String,
}

/// Debian's nginx's prefix (`--prefix=/usr/share/nginx`), where relative
/// paths go without `-p`.
pub const DEFAULT_PREFIX: &str = "/usr/share/nginx/";

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            default_listen_port: 80,
            as_root: true,
            prefix: DEFAULT_PREFIX.to_string(),
        }
    }
}

impl BuildOptions {
    /// `path` as nginx's `ngx_conf_full_name` makes it: an absolute path
    /// as it is, a relative one under the prefix.
    pub fn full_name(&self, path: &str) -> String {
        if path.starts_with('/') || self.prefix.is_empty() {
            return path.to_string();
        }
        let mut full = self.prefix.clone();
        if !full.ends_with('/') {
            full.push('/');
        }
        full.push_str(path);
        full
    }
}

/// A handler's complaint about a directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// A complete message (nginx's handlers that log their own).
    Own(String),
    /// Printed as `"name" directive MESSAGE` (handlers returning a string).
    Directive(String),
    /// Already reported.
    Reported,
}

impl Msg {
    /// A complete message.
    pub fn own(m: impl Into<String>) -> Msg {
        Msg::Own(m.into())
    }

    /// A message nginx prefixes with the directive's name.
    pub fn directive(m: impl Into<String>) -> Msg {
        Msg::Directive(m.into())
    }
}

/// The conf struct of the block being read.
pub enum Frame<'a> {
    /// The main context.
    Main(&'a mut Model),
    /// `events`.
    Events(&'a mut Settings),
    /// `http`.
    Http(&'a mut HttpConf),
    /// `server`.
    Server(&'a mut ServerConf),
    /// `location`.
    Location(&'a mut LocationConf),
    /// `upstream`.
    Upstream(&'a mut UpstreamConf),
}

impl Frame<'_> {
    /// The settings of this level.
    pub fn settings(&mut self) -> &mut Settings {
        match self {
            Frame::Main(m) => &mut m.main,
            Frame::Events(s) => s,
            Frame::Http(h) => &mut h.settings,
            Frame::Server(s) => &mut s.settings,
            Frame::Location(l) => &mut l.settings,
            Frame::Upstream(u) => &mut u.settings,
        }
    }
}

/// Phases of the checks nginx makes when an http block ends, in its order.
const PHASE_UPSTREAMS: u32 = 1;
const PHASE_PROXY_MERGE: u32 = 2;
const PHASE_LOCATIONS: u32 = 3;
const PHASE_VARIABLES: u32 = 4;
const PHASE_SERVERS: u32 = 5;
/// Checks nginx makes once the whole configuration is read.
const PHASE_CYCLE: u32 = 6;

/// nginx's `ngx_pagesize` on x86-64 Linux: the default of the proxy buffers.
const PAGE_SIZE: u64 = 4096;

/// The model builder's state.
pub struct Builder<'a> {
    /// Host name resolution.
    pub resolver: &'a dyn Resolver,
    /// Options.
    pub options: BuildOptions,
    diagnostics: Vec<Diagnostic>,
    /// Index of the server being read.
    pub(crate) current_server: usize,
    upstream_names: HashMap<String, Span>,
    /// proxy_pass hosts with a port, for nginx's `may not have port` check.
    proxy_ports: HashMap<String, u16>,
    defined_vars: Vec<String>,
    /// Template errors nginx finds only when merging (proxy_set_header).
    pub(crate) merge_errors: Vec<(String, u32)>,
    /// http-level `proxy_set_header` values, checked at the end of http
    /// only if a server inherits them.
    pub(crate) http_headers: Vec<(rginx_config::Word, u32)>,
    /// Variables used, with the order of their first use and where (for
    /// rginx's own errors; nginx names no line for an unknown variable).
    used_vars: Vec<(String, u32, Option<Span>)>,
    used_var_names: std::collections::HashSet<String>,
    log_formats: Vec<String>,
    /// Access log files with a buffer, by path (one buffer per file).
    log_buffers: HashMap<String, crate::model::LogBuffer>,
    listens: HashMap<SocketAddr, Vec<(usize, bool)>>,
    current_seq: u32,
    /// Where the directive being read is reported.
    current_span: Option<Span>,
    /// The main configuration file's directory (nginx's `conf_prefix`).
    conf_dir: std::path::PathBuf,
}

/// The outcome of [`build`]: the model (partial when there are errors) and
/// every diagnostic in the order nginx would report them.
#[derive(Debug, Default)]
pub struct Checked {
    /// The model.
    pub model: Model,
    /// Errors and warnings, in nginx's order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Validates a parsed configuration and builds its model. A syntax error
/// from the parser is merged into the diagnostics in nginx's order.
pub fn build(
    parsed: &rginx_config::Parsed,
    resolver: &dyn Resolver,
    options: BuildOptions,
) -> Checked {
    let config = &parsed.config;
    let mut b = Builder {
        resolver,
        options,
        diagnostics: Vec::new(),
        current_server: 0,
        upstream_names: HashMap::new(),
        proxy_ports: HashMap::new(),
        defined_vars: Vec::new(),
        merge_errors: Vec::new(),
        http_headers: Vec::new(),
        used_vars: Vec::new(),
        used_var_names: std::collections::HashSet::new(),
        log_formats: Vec::new(),
        log_buffers: HashMap::new(),
        listens: HashMap::new(),
        current_seq: 0,
        current_span: None,
        conf_dir: config
            .files
            .iter()
            .find(|f| !f.command_line)
            .and_then(|f| f.path.parent())
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default(),
    };
    let mut model = Model::default();
    b.walk(
        &config.directives,
        Context::Main,
        &mut Frame::Main(&mut model),
    );
    if let Some(error) = &parsed.error {
        b.diagnostics.push(Diagnostic::from(error));
    } else if model.events.is_none() {
        b.diagnostics.push(Diagnostic::error(
            "no \"events\" section in configuration",
            None,
            (config.end_seq, 0, 0),
        ));
    }
    if parsed.error.is_none() {
        b.check_worker_connections(&model, config.end_seq);
    }
    let mut diagnostics = b.diagnostics;
    diagnostics.sort_by_key(|d| d.order);
    // nothing after a syntax error is meaningful: nginx stopped there
    if let Some(error) = &parsed.error {
        diagnostics.retain(|d| d.order.0 <= error.seq);
    }
    Checked { model, diagnostics }
}

/// nginx's merge: every level inherits what it does not set.
fn merge_http(http: &mut HttpConf) {
    for server in &mut http.servers {
        server.settings.merge_from(&http.settings);
        for loc in &mut server.locations {
            merge_location(loc, &server.settings);
        }
    }
}

fn merge_location(loc: &mut LocationConf, parent: &Settings) {
    loc.settings.merge_from(parent);
    for nested in &mut loc.nested {
        merge_location(nested, &loc.settings);
    }
}

/// The variable an nginx directive rginx does not support would define
/// (`set $x ...`, `geo [$address] $x { }`, `split_clients $s $x { }`,
/// `perl_set $x ...`, `js_set $x ...`, `auth_request_set $x ...`).
fn variable_defined_by(d: &Directive) -> Option<&str> {
    let word = match d.name() {
        "set" | "perl_set" | "js_set" | "auth_request_set" => d.args.first(),
        "geo" | "geoip2" | "split_clients" => d.args.last(),
        _ => None,
    }?;
    word.as_str().strip_prefix('$')
}

/// Where nginx reports a directive's problem: the line of its `;` or `{`.
/// The column points at `word` (or the name) when it is on that line.
fn directive_span(d: &Directive, word: Option<usize>) -> Span {
    let w = word.and_then(|i| d.args.get(i)).unwrap_or(&d.name);
    if w.span.file == d.end.file && w.span.line == d.end.line {
        w.span
    } else {
        d.end
    }
}

impl Builder<'_> {
    /// Reads the directives of one block in `ctx` into `frame`.
    pub fn walk(&mut self, directives: &[Directive], ctx: Context, frame: &mut Frame<'_>) {
        for d in directives {
            self.current_seq = d.seq;
            self.current_span = Some(directive_span(d, None));
            let Some(spec) = self.check_shape(d, ctx) else {
                continue;
            };
            if let Status::Ignored(reason) = spec.status {
                let message = format!("\"{}\" directive is ignored by rginx: {reason}", spec.name);
                self.diagnostics.push(Diagnostic::warning(
                    message,
                    Some(directive_span(d, None)),
                    (d.seq, 0, 0),
                ));
            }
            let result = self.apply(spec, d, frame);
            if let Err(m) = result {
                self.report(d, m);
            }
        }
    }

    /// nginx's `ngx_conf_handler` checks: known name, context, `;` or `{`,
    /// number of arguments. Returns the matching table row.
    fn check_shape(&mut self, d: &Directive, ctx: Context) -> Option<&'static DirectiveSpec> {
        let name = d.name();
        let mut rows = lookup(name).peekable();
        if rows.peek().is_none() {
            let message = if is_nginx_directive(name) {
                // the variable it would define is known all the same, so
                // its uses are not reported as unknown as well
                if let Some(var) = variable_defined_by(d) {
                    self.define_variable(var);
                }
                format!("directive \"{name}\" is not supported by rginx")
            } else {
                format!("unknown directive \"{name}\"")
            };
            self.error_at_end(d, message);
            return None;
        }
        let Some(spec) = rows.find(|s| s.contexts.contains(&ctx)) else {
            self.error_at_end(d, format!("\"{name}\" directive is not allowed here"));
            return None;
        };
        match (spec.body, d.block.is_some()) {
            (Body::None, true) => {
                self.error_at_end(
                    d,
                    format!("directive \"{name}\" is not terminated by \";\""),
                );
                return None;
            }
            (Body::Directives(_) | Body::Entries, false) => {
                self.error_at_end(d, format!("directive \"{name}\" has no opening \"{{\""));
                return None;
            }
            _ => {}
        }
        let count = d.args.len();
        let too_many = count > 8 && !matches!(spec.arity, Arity::AtLeast(_));
        if too_many || !spec.arity.accepts(count) {
            self.error_at_end(
                d,
                format!("invalid number of arguments in \"{name}\" directive"),
            );
            return None;
        }
        Some(spec)
    }

    /// Parses the value with the row's kind.
    fn apply(
        &mut self,
        spec: &DirectiveSpec,
        d: &Directive,
        frame: &mut Frame<'_>,
    ) -> Result<(), Msg> {
        let first = d.args.first().map_or("", |w| w.as_str());
        // nginx's slot handlers refuse a second value before parsing it
        let simple = !matches!(spec.kind, Kind::Custom(_) | Kind::Bitmask(_));
        if simple && frame.settings().contains(spec.name) {
            return Err(Msg::directive("is duplicate"));
        }
        let value = match spec.kind {
            Kind::Custom(handler) => return handler(self, d, frame),
            Kind::Flag => Value::Flag(parse_flag(first).ok_or_else(|| {
                Msg::own(format!(
                    "invalid value \"{first}\" in \"{}\" directive, it must be \"on\" or \"off\"",
                    spec.name
                ))
            })?),
            Kind::Time => Value::Time(
                parse_time(first, false).ok_or_else(|| Msg::directive("invalid value"))?,
            ),
            Kind::Size => {
                Value::Size(parse_size(first).ok_or_else(|| Msg::directive("invalid value"))?)
            }
            Kind::Offset => {
                Value::Size(parse_offset(first).ok_or_else(|| Msg::directive("invalid value"))?)
            }
            Kind::Number => {
                Value::Number(parse_number(first).ok_or_else(|| Msg::directive("invalid number"))?)
            }
            Kind::Enum(choices) => {
                if !choices.contains(&first) {
                    return Err(Msg::own(format!("invalid value \"{first}\"")));
                }
                let chosen = choices
                    .iter()
                    .find(|c| **c == first)
                    .copied()
                    .unwrap_or_default();
                Value::Choice(chosen)
            }
            Kind::Text => Value::Text(first.to_string()),
            Kind::Bitmask(choices) => {
                // nginx compares in any case (`ngx_conf_set_bitmask_slot`);
                // the value kept is the table's spelling
                let mut words = Vec::with_capacity(d.args.len());
                for w in &d.args {
                    match choices.iter().find(|c| c.eq_ignore_ascii_case(w.as_str())) {
                        Some(choice) => words.push(choice.to_string()),
                        None => return Err(Msg::own(format!("invalid value \"{}\"", w.as_str()))),
                    }
                }
                // a bitmask is OR-ed, never "duplicate"
                let settings = frame.settings();
                if let Some(Setting {
                    value: Value::Words(old),
                    ..
                }) = settings.get_mut(spec.name)
                {
                    old.extend::<Vec<String>>(words);
                    return Ok(());
                }
                Value::Words(words)
            }
            Kind::Buffers => {
                let count = parse_number(first).filter(|n| *n > 0);
                let size = d
                    .args
                    .get(1)
                    .and_then(|w| parse_size(w.as_str()))
                    .filter(|n| *n > 0);
                match (count, size) {
                    (Some(count), Some(size)) => Value::Buffers { count, size },
                    _ => return Err(Msg::directive("invalid value")),
                }
            }
        };
        let settings = frame.settings();
        if settings.contains(spec.name) {
            return Err(Msg::directive("is duplicate"));
        }
        settings.insert(
            spec.name,
            Setting {
                value,
                span: d.name.span,
            },
        );
        Ok(())
    }

    /// Reports a handler's complaint about `d`.
    pub fn report(&mut self, d: &Directive, m: Msg) {
        let message = match m {
            Msg::Own(s) => s,
            Msg::Directive(s) => format!("\"{}\" directive {s}", d.name()),
            Msg::Reported => return,
        };
        self.error_at_end(d, message);
    }

    /// An error about `d` at the line nginx names.
    pub fn error_at_end(&mut self, d: &Directive, message: impl Into<String>) {
        let span = directive_span(d, None);
        self.diagnostics
            .push(Diagnostic::error(message, Some(span), (d.seq, 0, 0)));
    }

    /// An error at an arbitrary position and order (block ends).
    pub fn error_at(&mut self, span: Span, seq: u32, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::error(message, Some(span), (seq, 0, 0)));
    }

    /// A warning about `d`.
    pub fn warn_at(&mut self, d: &Directive, message: impl Into<String>) {
        let span = directive_span(d, None);
        self.diagnostics
            .push(Diagnostic::warning(message, Some(span), (d.seq, 0, 0)));
    }

    /// Compiles a regex (locations, server names, map keys) as serving
    /// will (all but the JIT step, which never refuses a pattern), so that
    /// `check` refuses exactly what would fail at start.
    /// Named captures become known variables, as in nginx.
    pub fn compile_regex(&mut self, pattern: &str, case_insensitive: bool) -> Result<(), Msg> {
        let names = crate::pcre::Pcre::check(pattern, case_insensitive).map_err(Msg::own)?;
        self.defined_vars.extend(names);
        Ok(())
    }

    /// Checks a value's variables; remembers them for the unknown-variable
    /// check at the end of http. Returns whether it has any variables.
    pub fn use_template(&mut self, value: &str) -> Result<bool, Msg> {
        self.use_template_with(value, false)
    }

    /// [`Builder::use_template`] for a `log_format`, where
    /// `$binary_remote_addr` is computed too (`Template::compile_log`).
    pub fn use_log_template(&mut self, value: &str) -> Result<bool, Msg> {
        self.use_template_with(value, true)
    }

    fn use_template_with(&mut self, value: &str, log: bool) -> Result<bool, Msg> {
        let (seq, span) = (self.current_seq, self.current_span);
        let mut any = false;
        let (names, used) = (&mut self.used_var_names, &mut self.used_vars);
        for_each_variable(value, |n| {
            any = true;
            if log && n == crate::template::LOG_ONLY {
                return;
            }
            if !names.contains(n) {
                names.insert(n.to_string());
                used.push((n.to_string(), seq, span));
            }
        })
        .map_err(|e| Msg::own(e.message()))?;
        Ok(any)
    }

    /// Checks a `proxy_set_header` value the way nginx's merge compiles it:
    /// syntax errors are reported at the end of http, variables with the
    /// others.
    pub(crate) fn check_header_value(&mut self, value: &rginx_config::Word, seq: u32) {
        let saved = (self.current_seq, self.current_span);
        self.current_seq = seq;
        self.current_span = Some(value.span);
        if let Err(Msg::Own(message)) = self.use_template(value.as_str()) {
            self.merge_errors.push((message, seq));
        }
        (self.current_seq, self.current_span) = saved;
    }

    /// How many errors have been reported so far.
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// Defines a variable (a map's result).
    pub fn define_variable(&mut self, name: &str) {
        self.defined_vars.push(name.to_string());
    }

    /// Records a `log_format` name.
    pub fn define_log_format(&mut self, name: &str) {
        self.log_formats.push(name.to_string());
    }

    /// Records that the access log file `path` is written through
    /// `buffer`; false when another `access_log` gave it other parameters.
    pub fn buffer_log_file(&mut self, path: &str, buffer: crate::model::LogBuffer) -> bool {
        *self.log_buffers.entry(path.to_string()).or_insert(buffer) == buffer
    }

    /// Whether a log format of that name was defined before this point.
    pub fn log_format_known(&self, name: &str) -> bool {
        name == "combined" || self.log_formats.iter().any(|n| n == name)
    }

    /// Records a listen address of server number `server`.
    pub fn register_listen(&mut self, listen: &crate::model::Listen, server: usize) {
        self.listens
            .entry(listen.addr)
            .or_default()
            .push((server, listen.default_server));
    }

    /// A file name as nginx reads a file the configuration names beside
    /// itself (`ngx_conf_full_name` with `conf_prefix`: certificates,
    /// keys): relative to the main configuration file's directory.
    pub fn conf_name(&self, path: &str) -> String {
        if path.starts_with('/') || self.conf_dir.as_os_str().is_empty() {
            return path.to_string();
        }
        self.conf_dir.join(path).to_string_lossy().into_owned()
    }

    /// Whether some server already is the default for `addr`.
    pub fn has_default_server(&self, addr: SocketAddr) -> bool {
        self.listens
            .get(&addr)
            .is_some_and(|v| v.iter().any(|(_, default)| *default))
    }

    /// Registers an upstream block's name.
    pub fn define_upstream(&mut self, name: &str, d: &Directive) -> Result<(), Msg> {
        let key = name.to_ascii_lowercase();
        if self.upstream_names.contains_key(&key) {
            return Err(Msg::own(format!("duplicate upstream \"{name}\"")));
        }
        if let Some(port) = self.proxy_ports.get(&key) {
            return Err(Msg::own(format!(
                "upstream \"{name}\" may not have port {port}"
            )));
        }
        self.upstream_names.insert(key, d.end);
        Ok(())
    }

    /// Records a proxy_pass host; a host that names an upstream may not
    /// carry a port.
    pub fn proxy_ref(&mut self, host: &str, port: Option<u16>) -> Result<(), Msg> {
        if let Some(port) = port {
            let key = host.to_ascii_lowercase();
            if self.upstream_names.contains_key(&key) {
                return Err(Msg::own(format!(
                    "upstream \"{host}\" may not have port {port}"
                )));
            }
            self.proxy_ports.entry(key).or_insert(port);
        }
        Ok(())
    }

    /// An http block cut short by a syntax error: merged for the model,
    /// without the end-of-block checks nginx never reached.
    pub fn finish_unclosed_http(&mut self, http: &mut HttpConf) {
        merge_http(http);
        self.merge_errors.clear();
        self.http_headers.clear();
        self.used_vars.clear();
        self.used_var_names.clear();
    }

    /// The checks nginx runs when an http block is complete.
    pub fn finish_http(&mut self, http: &mut HttpConf, close: Span, close_seq: u32) {
        self.check_upstreams(http, close_seq);
        let inherited = http
            .servers
            .iter()
            .any(|s| !s.settings.contains("proxy_set_header"));
        for (value, seq) in std::mem::take(&mut self.http_headers) {
            if inherited {
                self.check_header_value(&value, seq);
            }
        }
        merge_http(http);
        for (message, seq) in std::mem::take(&mut self.merge_errors) {
            self.diagnostics.push(Diagnostic::error(
                message,
                Some(close),
                (close_seq, PHASE_PROXY_MERGE, seq),
            ));
        }
        self.check_proxy_buffers(http, close, close_seq);
        for server in &http.servers {
            self.check_duplicate_locations(&server.locations, close_seq);
        }
        self.check_variables(close_seq);
        self.check_server_names(http, close_seq);
    }

    /// Resolves every proxy_pass host (or matches it to an upstream block,
    /// which may come later in the file), in the order nginx does.
    fn check_upstreams(&mut self, http: &mut HttpConf, close_seq: u32) {
        fn collect<'a>(locations: &'a mut [LocationConf], out: &mut Vec<&'a mut ProxyPass>) {
            for loc in locations {
                if let Some(pp) = &mut loc.proxy_pass {
                    out.push(pp);
                }
                collect(&mut loc.nested, out);
            }
        }
        let mut passes = Vec::new();
        for server in &mut http.servers {
            collect(&mut server.locations, &mut passes);
        }
        passes.sort_by_key(|p| p.seq);
        for pp in passes {
            let ProxyTarget::Host { host, port, addrs } = &mut pp.target else {
                continue;
            };
            let names_upstream = self
                .upstream_names
                .contains_key(host.to_ascii_lowercase().as_str());
            if names_upstream && !pp.explicit_port {
                pp.target = ProxyTarget::Upstream(host.clone());
                continue;
            }
            match self.resolver.resolve(host, *port) {
                Ok(resolved) => *addrs = resolved.into_iter().map(Into::into).collect(),
                Err(e) => self.diagnostics.push(Diagnostic::error(
                    format!("{e} in upstream \"{host}\""),
                    Some(pp.end),
                    (close_seq, PHASE_UPSTREAMS, pp.seq),
                )),
            }
        }
    }

    /// nginx's proxy buffer consistency checks, made while merging each
    /// server and location (`ngx_http_proxy_merge_loc_conf`).
    fn check_proxy_buffers(&mut self, http: &HttpConf, close: Span, close_seq: u32) {
        fn check(settings: &Settings) -> Option<&'static str> {
            let size_of = |name: &str| match settings.get(name).map(|s| &s.value) {
                Some(Value::Size(n)) => Some(*n),
                _ => None,
            };
            let buffer_size = size_of("proxy_buffer_size").unwrap_or(PAGE_SIZE);
            let (count, one) = match settings.get("proxy_buffers").map(|s| &s.value) {
                Some(Value::Buffers { count, size }) => (*count, *size),
                _ => (8, PAGE_SIZE),
            };
            if count < 2 {
                return Some("there must be at least 2 \"proxy_buffers\"");
            }
            let size = buffer_size.max(one);
            let busy = size_of("proxy_busy_buffers_size").unwrap_or(2 * size);
            if busy < size {
                return Some("\"proxy_busy_buffers_size\" must be equal to or greater than the maximum of the value of \"proxy_buffer_size\" and one of the \"proxy_buffers\"");
            }
            if busy > (count - 1) * one {
                return Some("\"proxy_busy_buffers_size\" must be less than the size of all \"proxy_buffers\" minus one buffer");
            }
            if size_of("proxy_temp_file_write_size").unwrap_or(2 * size) < size {
                return Some("\"proxy_temp_file_write_size\" must be equal to or greater than the maximum of the value of \"proxy_buffer_size\" and one of the \"proxy_buffers\"");
            }
            let max_file = size_of("proxy_max_temp_file_size").unwrap_or(1024 * 1024 * 1024);
            if max_file != 0 && max_file < size {
                return Some("\"proxy_max_temp_file_size\" must be equal to zero to disable temporary files usage or must be equal to or greater than the maximum of the value of \"proxy_buffer_size\" and one of the \"proxy_buffers\"");
            }
            None
        }
        fn walk<'a>(locations: &'a [LocationConf], out: &mut Vec<&'a Settings>) {
            for loc in locations {
                out.push(&loc.settings);
                walk(&loc.nested, out);
            }
        }
        let mut levels = Vec::new();
        for server in &http.servers {
            levels.push(&server.settings);
            walk(&server.locations, &mut levels);
        }
        if let Some(message) = levels.into_iter().find_map(check) {
            self.diagnostics.push(Diagnostic::error(
                message,
                Some(close),
                (close_seq, PHASE_PROXY_MERGE, u32::MAX),
            ));
        }
    }

    /// nginx refuses fewer worker connections than listening sockets
    /// (plus one). A wildcard address absorbs specific ones on its port.
    fn check_worker_connections(&mut self, model: &Model, end_seq: u32) {
        let connections = match model
            .events
            .as_ref()
            .and_then(|e| e.get("worker_connections"))
            .map(|s| &s.value)
        {
            Some(Value::Number(n)) => *n,
            _ => 512,
        };
        let Some(http) = &model.http else { return };
        let all: Vec<SocketAddr> = http
            .servers
            .iter()
            .flat_map(|s| s.listens.iter().map(|l| l.addr))
            .collect();
        let mut sockets: Vec<SocketAddr> = Vec::new();
        for addr in &all {
            let wildcard_on_port = all.iter().any(|a| {
                a.port() == addr.port() && a.is_ipv4() == addr.is_ipv4() && a.ip().is_unspecified()
            });
            let socket = if wildcard_on_port {
                let ip = if addr.is_ipv4() {
                    std::net::IpAddr::from([0u8; 4])
                } else {
                    std::net::IpAddr::from([0u16; 8])
                };
                SocketAddr::new(ip, addr.port())
            } else {
                *addr
            };
            if !sockets.contains(&socket) {
                sockets.push(socket);
            }
        }
        let count = sockets.len() as u64;
        if count > 0 && connections <= count {
            self.diagnostics.push(Diagnostic::error(
                format!(
                    "{connections} worker_connections are not enough for {count} listening sockets"
                ),
                None,
                (end_seq, PHASE_CYCLE, 0),
            ));
        }
    }

    fn check_duplicate_locations(&mut self, locations: &[LocationConf], close_seq: u32) {
        use crate::model::LocationMatcher::{Exact, Prefix};
        // exact and prefix (`^~` included) names must be unique per level
        let mut seen: std::collections::HashSet<(bool, &str)> = std::collections::HashSet::new();
        for loc in locations {
            let key = match &loc.matcher {
                Exact(name) => Some((true, name.as_str())),
                Prefix { path, .. } => Some((false, path.as_str())),
                _ => None,
            };
            if key.is_some_and(|k| !seen.insert(k)) {
                self.diagnostics.push(Diagnostic::error(
                    format!("duplicate location \"{}\"", loc.matcher.name()),
                    Some(loc.span),
                    (close_seq, PHASE_LOCATIONS, loc.span.line),
                ));
            }
            self.check_duplicate_locations(&loc.nested, close_seq);
        }
    }

    fn check_variables(&mut self, close_seq: u32) {
        let mut reported: Vec<&str> = Vec::new();
        for (name, seq, span) in &self.used_vars {
            let defined = self.defined_vars.iter().any(|v| v == name);
            let message = if defined || (is_builtin(name) && crate::template::is_implemented(name))
            {
                continue;
            } else if is_builtin(name) {
                // a real nginx variable rginx cannot compute: never empty in silence
                format!("variable \"${name}\" is not supported by rginx")
            } else {
                format!("unknown \"{name}\" variable")
            };
            if reported.contains(&name.as_str()) {
                continue;
            }
            reported.push(name);
            // nginx's "unknown variable" names no line; rginx's own
            // refusal of a variable it cannot compute does
            let at = if is_builtin(name) { *span } else { None };
            let mut diagnostic = Diagnostic::error(message, at, (close_seq, PHASE_VARIABLES, *seq));
            if !is_builtin(name) {
                // often a snippet lifted out of a config whose map it needs
                let recipe = if name == "connection_upgrade" {
                    " The WebSocket recipe defines it with: map $http_upgrade $connection_upgrade { default upgrade; '' close; }"
                } else {
                    ""
                };
                diagnostic = diagnostic.with_hint(format!(
                    "nothing defines ${name}: it needs a `map` (in the http context) that sets it, or the file that has one.{recipe}"
                ));
            }
            self.diagnostics.push(diagnostic);
        }
        self.used_vars.clear();
        self.used_var_names.clear();
    }

    fn check_server_names(&mut self, http: &HttpConf, close_seq: u32) {
        let mut seen: HashMap<(SocketAddr, String), ()> = HashMap::new();
        for server in &http.servers {
            for listen in &server.listens {
                for name in &server.names {
                    let key = match name {
                        ServerName::Exact(n) => n.clone(),
                        ServerName::LeadingWildcard { suffix, also_bare } => {
                            format!("{}{suffix}", if *also_bare { "" } else { "*" })
                        }
                        ServerName::TrailingWildcard(p) => format!("{p}*"),
                        ServerName::Regex(r) => format!("~{r}"),
                    };
                    if matches!(name, ServerName::Regex(_)) {
                        continue;
                    }
                    if seen.insert((listen.addr, key.clone()), ()).is_some() {
                        let message = format!(
                            "conflicting server name \"{key}\" on {}, ignored",
                            addr_text(listen.addr)
                        );
                        self.diagnostics.push(Diagnostic::warning(
                            message,
                            None,
                            (close_seq, PHASE_SERVERS, server.span.line),
                        ));
                    }
                }
            }
        }
    }
}
