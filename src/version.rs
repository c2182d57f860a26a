//! `rginx -v` and `rginx -V`: nginx's version lines, for rginx, in a form
//! scripts can read (`NAME: VALUE` lines; `configure arguments:` as
//! nginx's, naming the modules rginx does not have).

use rginx_core::table::{Status, DIRECTIVES};

/// The nginx release rginx follows.
pub const NGINX_VERSION: &str = "1.22.1";

/// nginx's standard http modules rginx does not have at all, as
/// `./configure --without-...` names them.
const WITHOUT: &[&str] = &[
    "http_charset_module",
    "http_gzip_module",
    "http_ssi_module",
    "http_userid_module",
    "http_access_module",
    "http_auth_basic_module",
    "http_mirror_module",
    "http_autoindex_module",
    "http_geo_module",
    "http_split_clients_module",
    "http_referer_module",
    "http_fastcgi_module",
    "http_uwsgi_module",
    "http_scgi_module",
    "http_grpc_module",
    "http_memcached_module",
    "http_limit_conn_module",
    "http_limit_req_module",
    "http_empty_gif_module",
    "http_browser_module",
    "http_upstream_zone_module",
    "http-cache",
];

/// Prints the version (`long`: with what rginx implements) on stderr, as
/// nginx does.
pub fn print(long: bool) {
    let mut out = format!(
        "rginx version: rginx/{} (nginx/{NGINX_VERSION} compatible)\n",
        env!("CARGO_PKG_VERSION")
    );
    if long {
        out.push_str(&format!("compatible with: nginx/{NGINX_VERSION}\n"));
        let mut args = vec![
            format!(
                "--prefix={}",
                rginx_core::DEFAULT_PREFIX.trim_end_matches('/')
            ),
            format!("--conf-path={}", crate::cli::DEFAULT_CONF),
            "--error-log-path=stderr".to_string(),
            format!(
                "--http-client-body-temp-path={}",
                rginx_core::model::TempPath::CLIENT_BODY
            ),
            format!(
                "--http-proxy-temp-path={}",
                rginx_core::model::TempPath::PROXY
            ),
            "--with-http_stub_status_module".to_string(),
        ];
        args.extend(WITHOUT.iter().map(|m| format!("--without-{m}")));
        out.push_str(&format!("configure arguments: {}\n", args.join(" ")));
        let supported = DIRECTIVES
            .iter()
            .filter(|d| d.status == Status::Supported)
            .count();
        out.push_str(&format!(
            "rginx directives: {supported} supported, {} ignored with a warning; any other is an error (docs/directives.md)\n",
            DIRECTIVES.len() - supported
        ));
        out.push_str("rginx partial: http_rewrite_module (return only), no TLS, no HTTP/2\n");
    }
    eprint!("{out}");
}
