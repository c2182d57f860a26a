//! The differential suite: six configurations, each run by real nginx and
//! by `rginx -c` in front of the same echo backend; every request goes to
//! both over a raw socket, and the client's view (status, header lines but
//! Date and Server, body, which holds the backend's view of the request)
//! must be the same, up to the differences docs/directives.md lists.
//! `RGINX_DEBUG=1` prints the statuses rginx gave per scenario.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use common::wire::{scripted_backend, send, Message};
use common::*;
use rginx_proxy::echo::EchoBackend;

/// Addresses a scenario's configuration may use.
struct Backends {
    echo: SocketAddr,
    /// Nothing listens here: connections are refused.
    dead: SocketAddr,
    /// Accepts connections and never answers.
    silent: SocketAddr,
    /// Answer every request with 503, 404 or 500 (the body names them).
    s503: SocketAddr,
    s404: SocketAddr,
    s500: SocketAddr,
    /// Reads the request and closes the connection without answering.
    hangup: SocketAddr,
    /// Answers `/N` with a response head holding an `N`-byte header.
    big_head: SocketAddr,
}

/// A response head that grows with the number at the end of the path.
fn big_head(request: &Message) -> Option<String> {
    let n: usize = request.head[0]
        .split(' ')
        .nth(1)
        .and_then(|p| p.rsplit('/').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    Some(format!(
        "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        "b".repeat(n)
    ))
}

/// The same status for every request (the body names it and the request).
fn fixed(status: u16, request: &Message) -> Option<String> {
    let body = format!("{status} for {}\n", request.head[0]);
    Some(format!(
        "HTTP/1.1 {status} Whatever\r\nContent-Type: text/plain\r\nX-Backend: fixed\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ))
}

/// A listener that accepts and holds every connection without answering.
fn silent_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    addr
}

struct Scenario {
    name: &'static str,
    config: fn(u16, &Backends) -> String,
    requests: &'static [&'static str],
}

fn seed(port: u16, b: &Backends) -> String {
    seed_http(port, b.echo)
}

const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

fn inherit(port: u16, b: &Backends) -> String {
    format!(
        "proxy_set_header X-Http http-level;
         proxy_set_header X-Both http;
         server {{
             listen 127.0.0.1:{port};
             location /inherits-http/ {{ proxy_pass http://{e}; }}
         }}
         server {{
             listen 127.0.0.1:{port};
             server_name own.test;
             proxy_set_header X-Server server-level;
             proxy_set_header X-Both server;
             location /inherits-server/ {{ proxy_pass http://{e}; }}
             location /own/ {{
                 proxy_pass http://{e};
                 proxy_set_header X-Loc location;
                 proxy_set_header X-Empty '';
                 proxy_set_header Accept-Encoding '';
                 proxy_set_header X-From-Client $http_x_client;
             }}
             location /nested/ {{
                 proxy_set_header X-Outer outer;
                 location /nested/inner/ {{ proxy_pass http://{e}; }}
                 location /nested/replaced/ {{
                     proxy_pass http://{e};
                     proxy_set_header X-Inner inner;
                 }}
             }}
             location /underscores/ {{ proxy_pass http://{e}; }}
         }}
         server {{
             listen 127.0.0.1:{port};
             server_name under.test;
             underscores_in_headers on;
             location / {{ proxy_pass http://{e}; proxy_http_version 1.1; }}
         }}",
        e = b.echo
    )
}

fn uris(port: u16, b: &Backends) -> String {
    format!(
        "upstream app {{ server {e}; }}
         server {{
             listen 127.0.0.1:{port};
             location /keep/ {{ proxy_pass http://app; }}
             location /swap/ {{ proxy_pass http://app/other/; }}
             location /noslash {{ proxy_pass http://{e}/x; }}
             location = /exact {{ proxy_pass http://{e}/exactly; }}
             location /dir/ {{ proxy_pass http://{e}; }}
             location ~ ^/re/(\\w+)/(.*)$ {{
                 proxy_pass http://{e}/captured/$2?first=$1;
             }}
             location ~* \\.JSON$ {{ proxy_pass http://{e}; proxy_set_header X-Kind json; }}
             location ^~ /static/ {{ proxy_pass http://{e}/s/; }}
             location ~ /static/ {{ proxy_pass http://{dead}; }}
             location /vars/ {{
                 proxy_pass http://{e}$uri$is_args$args;
                 proxy_set_header X-Args $args;
                 proxy_set_header X-Request-Uri $request_uri;
             }}
         }}",
        e = b.echo,
        dead = b.dead
    )
}

fn servers(port: u16, b: &Backends) -> String {
    let server = |names: &str, tag: &str, extra: &str| {
        format!(
            "server {{
                 listen 127.0.0.1:{port}{extra};
                 server_name {names};
                 location / {{
                     proxy_pass http://{e};
                     proxy_set_header X-Server {tag};
                     proxy_set_header X-Host $host;
                     proxy_set_header X-Name $server_name;
                 }}
             }}",
            e = b.echo
        )
    };
    [
        server("first.test", "first", ""),
        server("example.com www.example.com", "exact", ""),
        server("*.example.com", "wild-front", ""),
        server("mail.*", "wild-back", ""),
        server("~^(?<sub>\\w+)\\.regex\\.test$", "regex", ""),
        server("_", "default", " default_server"),
    ]
    .join("\n")
}

fn failures(port: u16, b: &Backends) -> String {
    format!(
        "upstream group {{
             server {dead};
             server {e} backup;
         }}
         server {{
             listen 127.0.0.1:{port};
             client_max_body_size 16;
             location /down {{ proxy_pass http://{dead}; }}
             location /silent {{ proxy_pass http://{silent}; proxy_read_timeout 1s; }}
             location /backup {{ proxy_pass http://group; }}
             location /upgrade-1.0 {{
                 proxy_pass http://{e};
                 proxy_set_header Upgrade $http_upgrade;
                 proxy_set_header Connection upgrade;
             }}
             location /echo {{ proxy_pass http://{e}; }}
         }}",
        dead = b.dead,
        silent = b.silent,
        e = b.echo
    )
}

fn next_upstream(port: u16, b: &Backends) -> String {
    // one group per location, and max_fails=0 where a failing server must
    // stay in the rotation, so each request meets the case it is about
    let group = |name: &str, first: SocketAddr, second: SocketAddr| {
        format!("upstream {name} {{ server {first} max_fails=0; server {second}; }}\n")
    };
    let mut out = String::new();
    for name in ["flaky_default", "flaky_503", "flaky_post", "flaky_nonidem"] {
        out += &group(name, b.s503, b.echo);
    }
    out += &group("lost", b.s404, b.s404);
    out += &format!(
        "upstream broken {{ server {} max_fails=0; server {} max_fails=0; server {}; }}\n",
        b.s503, b.s500, b.echo
    );
    out += &format!(
        "upstream broken_once {{ server {} max_fails=0; server {} max_fails=0; server {}; }}\n",
        b.s503, b.s500, b.echo
    );
    for name in ["hangs", "hangs_post", "hangs_off"] {
        out += &group(name, b.hangup, b.echo);
    }
    out += &format!(
        "server {{
             listen 127.0.0.1:{port};
             location /default/ {{ proxy_pass http://flaky_default; }}
             location /on-503/ {{
                 proxy_pass http://flaky_503;
                 proxy_next_upstream error timeout http_503;
             }}
             location /post-503/ {{ proxy_pass http://flaky_post; proxy_next_upstream http_503; }}
             location /non-idempotent/ {{
                 proxy_pass http://flaky_nonidem;
                 proxy_next_upstream http_503 non_idempotent;
             }}
             location /404/ {{ proxy_pass http://lost; proxy_next_upstream http_404; }}
             location /5xx/ {{ proxy_pass http://broken; proxy_next_upstream http_500 http_503; }}
             location /one-try/ {{
                 proxy_pass http://broken_once;
                 proxy_next_upstream http_500 http_503;
                 proxy_next_upstream_tries 1;
             }}
             location /hangup/ {{ proxy_pass http://hangs; }}
             location /hangup-post/ {{ proxy_pass http://hangs_post; }}
             location /hangup-off/ {{ proxy_pass http://hangs_off; proxy_next_upstream off; }}
         }}"
    );
    out
}

fn response_heads(port: u16, b: &Backends) -> String {
    format!(
        "server {{
             listen 127.0.0.1:{port};
             location /default/ {{ proxy_pass http://{big}; }}
             location /8k/ {{ proxy_pass http://{big}; proxy_buffer_size 8k; }}
             location /retry/ {{ proxy_pass http://{big}; proxy_next_upstream invalid_header; }}
         }}",
        big = b.big_head
    )
}

fn methods(port: u16, b: &Backends) -> String {
    format!(
        "server {{
             listen 127.0.0.1:{port};
             location /get/ {{ proxy_pass http://{e}; proxy_method GET; }}
             location /var/ {{ proxy_pass http://{e}; proxy_method $arg_m; }}
             location /plain/ {{ proxy_pass http://{e}; }}
         }}",
        e = b.echo
    )
}

fn maps(port: u16, b: &Backends) -> String {
    format!(
        "map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
         map $http_user_agent $agent {{
             default other;
             ~*curl curl;
             ~^Mozilla/(?<major>\\d+) mozilla-$major;
             exact-agent exact;
         }}
         map $host $site {{
             hostnames;
             default unknown;
             .example.com example;
             *.test test;
         }}
         server {{
             listen 127.0.0.1:{port};
             location / {{
                 proxy_pass http://{e};
                 proxy_http_version 1.1;
                 proxy_set_header Upgrade $http_upgrade;
                 proxy_set_header Connection $connection_upgrade;
                 proxy_set_header X-Agent $agent;
                 proxy_set_header X-Site $site;
                 proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
             }}
         }}",
        e = b.echo
    )
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "seed config (examples/websocket.conf)",
        config: seed,
        requests: &[
            "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
            "GET /api/items?id=1 HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
            "GET /ws/ HTTP/1.1\r\nHost: example.com\r\n{UPGRADE}\r\n",
            "GET /ws HTTP/1.1\r\nHost: example.com\r\n{UPGRADE}\r\n",
            "GET /ws/chat HTTP/1.1\r\nHost: example.com\r\n\r\n",
            "GET /ws/ HTTP/1.0\r\n{UPGRADE}\r\n",
            "GET /plain HTTP/1.0\r\nHost: example.com\r\n\r\n",
            "POST /api/sized HTTP/1.1\r\nHost: example.com\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello world",
            "POST /api/chunked HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            "PUT /api/empty HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n",
            "HEAD /api/head HTTP/1.1\r\nHost: example.com\r\n\r\n",
            "GET /api/close HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
            "GET /ws HTTP/1.1\r\nHost: example.com\r\n\r\n",
            "DELETE /api/items/1 HTTP/1.1\r\nHost: example.com:8443\r\n\r\n",
            "GET /api/q?a=%20b&c HTTP/1.1\r\nHost: example.com\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n",
            "GET /api/keep HTTP/1.0\r\nHost: example.com\r\nConnection: keep-alive\r\n\r\n",
        ],
    },
    Scenario {
        name: "proxy_set_header inheritance",
        config: inherit,
        requests: &[
            "GET /inherits-http/a HTTP/1.1\r\nHost: plain.test\r\n\r\n",
            "GET /inherits-server/a HTTP/1.1\r\nHost: own.test\r\n\r\n",
            "GET /own/a HTTP/1.1\r\nHost: own.test\r\nX-Client: from-client\r\nAccept-Encoding: gzip\r\nX-Empty: client\r\n\r\n",
            "GET /own/b HTTP/1.1\r\nHost: own.test\r\n\r\n",
            "GET /nested/inner/x HTTP/1.1\r\nHost: own.test\r\n\r\n",
            "GET /nested/replaced/x HTTP/1.1\r\nHost: own.test\r\n\r\n",
            "GET /underscores/x HTTP/1.1\r\nHost: own.test\r\nX_Under: dropped\r\nX-Dash: kept\r\n\r\n",
            "GET /x HTTP/1.1\r\nHost: under.test\r\nX_Under: kept\r\n\r\n",
            "GET /underscores/dup HTTP/1.1\r\nHost: own.test\r\nX-Dup: 1\r\nX-Dup: 2\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
            "GET /underscores/empty HTTP/1.1\r\nHost: own.test\r\nX-Blank:\r\nX-Spaces:    \r\n\r\n",
            "GET /underscores/upgrade HTTP/1.1\r\nHost: own.test\r\n{UPGRADE}\r\n",
            "GET /inherits-http/keep-alive HTTP/1.1\r\nHost: plain.test\r\nConnection: keep-alive\r\nKeep-Alive: 300\r\nTE: trailers\r\n\r\n",
        ],
    },
    Scenario {
        name: "proxy_pass URIs and locations",
        config: uris,
        requests: &[
            "GET /keep/a/b?x=1 HTTP/1.1\r\nHost: u.test\r\n\r\n",
            "GET /swap/a/b?x=1 HTTP/1.1\r\nHost: u.test\r\n\r\n",
            "GET /swap/%41%20b HTTP/1.1\r\nHost: u.test\r\n\r\n",
            "GET /noslash/more HTTP/1.1\r\nHost: u.test\r\n\r\n",
            "GET /noslashing HTTP/1.1\r\nHost: u.test\r\n\r\n",
            "GET /exact HTTP/1.1\r\nHost: u.test\r\n\r\n",
            "GET /exact?q=1 HTTP/1.1\r\nHost: u.test\r\n\r\n",
            "GET /dir HTTP/1.1\r\nHost: u.test\r\n\r\n",
            "GET /dir?a=1 HTTP/1.1\r\nHost: u.test\r\n\r\n",
            "GET /re/abc/rest/of/it HTTP/1.1\r\nHost: u.test\r\n\r\n",
            "GET /data/file.json HTTP/1.1\r\nHost: u.test\r\n\r\n",
            "GET /static/app.json HTTP/1.1\r\nHost: u.test\r\n\r\n",
            "GET /vars/a%2Fb?x=1&y=2 HTTP/1.1\r\nHost: u.test\r\n\r\n",
            "GET /vars/./c/../d HTTP/1.1\r\nHost: u.test\r\n\r\n",
            "GET /keep//double///slashes HTTP/1.1\r\nHost: u.test\r\n\r\n",
            "GET /nowhere HTTP/1.1\r\nHost: u.test\r\n\r\n",
            "GET /swap/ HTTP/1.1\r\nHost: u.test\r\n\r\n",
            "GET /re/x/ HTTP/1.1\r\nHost: u.test\r\n\r\n",
            "GET /static/x?y HTTP/1.1\r\nHost: u.test\r\n\r\n",
            "HEAD /dir HTTP/1.1\r\nHost: u.test\r\n\r\n",
            "GET http://absolute.test/keep/abs HTTP/1.1\r\nHost: u.test\r\n\r\n",
        ],
    },
    Scenario {
        name: "server_name and the default server",
        config: servers,
        requests: &[
            "GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n",
            "GET /a HTTP/1.1\r\nHost: WWW.Example.COM.\r\n\r\n",
            "GET /a HTTP/1.1\r\nHost: api.example.com:8080\r\n\r\n",
            "GET /a HTTP/1.1\r\nHost: deep.api.example.com\r\n\r\n",
            "GET /a HTTP/1.1\r\nHost: mail.example.org\r\n\r\n",
            "GET /a HTTP/1.1\r\nHost: foo.regex.test\r\n\r\n",
            "GET /a HTTP/1.1\r\nHost: first.test\r\n\r\n",
            "GET /a HTTP/1.1\r\nHost: unknown.test\r\n\r\n",
            "GET /a HTTP/1.0\r\n\r\n",
            "GET /a HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        ],
    },
    Scenario {
        name: "failures and limits",
        config: failures,
        requests: &[
            "GET /down HTTP/1.1\r\nHost: f.test\r\n\r\n",
            "GET /silent HTTP/1.1\r\nHost: f.test\r\n\r\n",
            "GET /backup HTTP/1.1\r\nHost: f.test\r\n\r\n",
            "GET /upgrade-1.0 HTTP/1.1\r\nHost: f.test\r\n{UPGRADE}\r\n",
            "POST /echo HTTP/1.1\r\nHost: f.test\r\nContent-Length: 17\r\n\r\n12345678901234567",
            "POST /echo HTTP/1.1\r\nHost: f.test\r\nContent-Length: 16\r\n\r\n1234567890123456",
            "POST /echo HTTP/1.1\r\nHost: f.test\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n12345678901234567\r\n0\r\n\r\n",
            "GET /echo HTTP/1.1\r\n\r\n",
            "GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET /../etc HTTP/1.1\r\nHost: f.test\r\n\r\n",
            "GET /nothing HTTP/1.1\r\nHost: f.test\r\n\r\n",
            "HEAD /down HTTP/1.1\r\nHost: f.test\r\n\r\n",
            "GET /backup HTTP/1.0\r\n\r\n",
            "GET /nothing HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            "GET /echo HTTP/1.1\r\nHost: f.test\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
        ],
    },
    Scenario {
        name: "proxy_next_upstream",
        config: next_upstream,
        requests: &[
            "GET /default/1 HTTP/1.1\r\nHost: n.test\r\n\r\n",
            "GET /default/2 HTTP/1.1\r\nHost: n.test\r\n\r\n",
            "GET /default/3 HTTP/1.1\r\nHost: n.test\r\n\r\n",
            "GET /on-503/1 HTTP/1.1\r\nHost: n.test\r\n\r\n",
            "GET /on-503/2 HTTP/1.1\r\nHost: n.test\r\n\r\n",
            "GET /on-503/3 HTTP/1.1\r\nHost: n.test\r\n\r\n",
            "PUT /on-503/4 HTTP/1.1\r\nHost: n.test\r\nContent-Length: 0\r\n\r\n",
            "POST /post-503/1 HTTP/1.1\r\nHost: n.test\r\nContent-Length: 2\r\n\r\nab",
            "POST /post-503/2 HTTP/1.1\r\nHost: n.test\r\nContent-Length: 2\r\n\r\nab",
            "POST /post-503/3 HTTP/1.1\r\nHost: n.test\r\nContent-Length: 2\r\n\r\nab",
            "POST /non-idempotent/1 HTTP/1.1\r\nHost: n.test\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
            "POST /non-idempotent/2 HTTP/1.1\r\nHost: n.test\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
            "POST /non-idempotent/3 HTTP/1.1\r\nHost: n.test\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
            "GET /404/1 HTTP/1.1\r\nHost: n.test\r\n\r\n",
            "GET /404/2 HTTP/1.1\r\nHost: n.test\r\n\r\n",
            "GET /5xx/1 HTTP/1.1\r\nHost: n.test\r\n\r\n",
            "GET /5xx/2 HTTP/1.1\r\nHost: n.test\r\n\r\n",
            "GET /5xx/3 HTTP/1.1\r\nHost: n.test\r\n\r\n",
            "GET /one-try/1 HTTP/1.1\r\nHost: n.test\r\n\r\n",
            "GET /one-try/2 HTTP/1.1\r\nHost: n.test\r\n\r\n",
            "GET /one-try/3 HTTP/1.1\r\nHost: n.test\r\n\r\n",
            "GET /hangup/1 HTTP/1.1\r\nHost: n.test\r\n\r\n",
            "GET /hangup/2 HTTP/1.1\r\nHost: n.test\r\n\r\n",
            "POST /hangup-post/1 HTTP/1.1\r\nHost: n.test\r\nContent-Length: 2\r\n\r\nab",
            "POST /hangup-post/2 HTTP/1.1\r\nHost: n.test\r\nContent-Length: 2\r\n\r\nab",
            "GET /hangup-off/1 HTTP/1.1\r\nHost: n.test\r\n\r\n",
            "GET /hangup-off/2 HTTP/1.1\r\nHost: n.test\r\n\r\n",
        ],
    },
    Scenario {
        name: "response heads and proxy_buffer_size",
        config: response_heads,
        requests: &[
            "GET /default/1000 HTTP/1.1\r\nHost: r.test\r\n\r\n",
            "GET /default/4000 HTTP/1.1\r\nHost: r.test\r\n\r\n",
            "GET /default/4100 HTTP/1.1\r\nHost: r.test\r\n\r\n",
            "GET /default/9000 HTTP/1.1\r\nHost: r.test\r\n\r\n",
            "GET /8k/5000 HTTP/1.1\r\nHost: r.test\r\n\r\n",
            "GET /8k/8200 HTTP/1.1\r\nHost: r.test\r\n\r\n",
            "GET /retry/9000 HTTP/1.1\r\nHost: r.test\r\n\r\n",
        ],
    },
    Scenario {
        name: "proxy_method",
        config: methods,
        requests: &[
            "POST /get/a HTTP/1.1\r\nHost: m.test\r\nContent-Length: 3\r\n\r\nabc",
            "GET /var/a?m=PUT HTTP/1.1\r\nHost: m.test\r\n\r\n",
            "DELETE /var/a?m=OPTIONS HTTP/1.1\r\nHost: m.test\r\n\r\n",
            "PATCH /plain/a HTTP/1.1\r\nHost: m.test\r\nContent-Length: 1\r\n\r\nz",
        ],
    },
    Scenario {
        name: "map and the upgrade recipe",
        config: maps,
        requests: &[
            "GET / HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: curl/8.0\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x.test\r\nUser-Agent: Mozilla/5.0 (X11)\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: exact-agent\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: other.org\r\n\r\n",
            "GET /ws HTTP/1.1\r\nHost: example.com\r\n{UPGRADE}\r\n",
            "GET / HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 1.2.3.4, 5.6.7.8\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
        ],
    },
];

/// A response as compared: the status line, the header lines but Date and
/// Server as they came (names in their case, in their order), and the body
/// with the error pages' signature line taken out and the proxy's own port
/// written as `PORT`. The body holds the backend's view of the request, so
/// what each proxy sent upstream is compared byte for byte too.
const NGINX_SIGNATURE: &str = "<hr><center>nginx/1.22.1</center>";
const RGINX_SIGNATURE: &str = concat!("<hr><center>rginx/", env!("CARGO_PKG_VERSION"), "</center>");

fn client_view(m: &Message, port: u16, nginx: bool) -> Vec<String> {
    let mut out = vec![m.head.first().cloned().unwrap_or_default()];
    for line in m.head.iter().skip(1) {
        let name = line.split_once(':').map_or(line.as_str(), |(n, _)| n);
        if name.eq_ignore_ascii_case("date") || name.eq_ignore_ascii_case("server") {
            continue;
        }
        out.push(line.replace(&port.to_string(), "PORT"));
    }
    let raw = String::from_utf8_lossy(&m.body);
    let body = raw.replace(NGINX_SIGNATURE, RGINX_SIGNATURE);
    let own_page = m.status() >= 300 && m.header("content-type") == Some("text/html");
    if own_page && nginx {
        // the signature's length is in the page's Content-Length, also for
        // HEAD, which has no body to rewrite
        let shorter = NGINX_SIGNATURE.len() - RGINX_SIGNATURE.len();
        for line in out.iter_mut() {
            if let Some(n) = line.strip_prefix("Content-Length: ") {
                let n: usize = n.parse().unwrap_or(0);
                *line = format!("Content-Length: {}", n.saturating_sub(shorter));
            }
        }
    }
    out.push(body.replace(&port.to_string(), "PORT"));
    out
}

/// Where two views first differ, with a little of each around it (long
/// lines are cut in the middle when shown whole).
fn first_difference(want: Option<&[String]>, got: Option<&[String]>) -> String {
    let (Some(want), Some(got)) = (want, got) else {
        return String::new();
    };
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        if w != g {
            let at = w.bytes().zip(g.bytes()).take_while(|(a, b)| a == b).count();
            let around = |l: &str| {
                let from = at.saturating_sub(40);
                let to = (at + 60).min(l.len());
                l.get(from..to).unwrap_or(l).to_string()
            };
            return format!(
                "line {i}, byte {at}: nginx {:?} / rginx {:?}",
                around(w),
                around(g)
            );
        }
    }
    format!("{} lines against {}", want.len(), got.len())
}

/// A line as a failure shows it: long ones cut in the middle.
fn shortened(line: &str) -> String {
    if line.len() <= 160 {
        return format!("{line:?}");
    }
    let head: String = line.chars().take(80).collect();
    let tail: String = line
        .chars()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{head:?}...({} bytes)...{tail:?}", line.len())
}

fn start_backends() -> (EchoBackend, Backends) {
    let echo = EchoBackend::start("127.0.0.1:0".parse().unwrap()).expect("echo backend");
    let backends = Backends {
        echo: echo.addr(),
        dead: SocketAddr::from(([127, 0, 0, 1], free_port())),
        silent: silent_backend(),
        s503: scripted_backend(|r| fixed(503, r)),
        s404: scripted_backend(|r| fixed(404, r)),
        s500: scripted_backend(|r| fixed(500, r)),
        hangup: scripted_backend(|_| None),
        big_head: scripted_backend(big_head),
    };
    (echo, backends)
}

fn exchange_all(port: u16, requests: &[&str]) -> Vec<Option<Message>> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    requests
        .iter()
        .map(|r| {
            let r = r.replace("{UPGRADE}", UPGRADE);
            send(
                addr,
                r.as_bytes(),
                r.starts_with("HEAD "),
                Duration::from_secs(5),
            )
        })
        .collect()
}

#[test]
fn rginx_answers_as_nginx_does() {
    let (_echo, backends) = start_backends();
    let total: usize = SCENARIOS.iter().map(|s| s.requests.len()).sum();
    assert!(SCENARIOS.len() >= 6 && total >= 80, "{total} requests");
    let nginx = nginx();
    let mut failures = Vec::new();
    for scenario in SCENARIOS {
        let port = free_port();
        let _rginx = start_rginx(&(scenario.config)(port, &backends), port);
        let got = exchange_all(port, scenario.requests);
        if std::env::var_os("RGINX_DEBUG").is_some() {
            let statuses: Vec<u16> = got
                .iter()
                .map(|m| m.as_ref().map_or(0, Message::status))
                .collect();
            eprintln!("{}: {statuses:?}", scenario.name);
        }
        drop(_rginx);
        for (request, response) in scenario.requests.iter().zip(&got) {
            if response.is_none() {
                failures.push(format!("{}: no answer to {request:?}", scenario.name));
            }
        }
        let Some(nginx) = &nginx else { continue };
        let nginx_port = free_port();
        let _nginx =
            NginxServer::start(nginx, &(scenario.config)(nginx_port, &backends), nginx_port);
        let want = exchange_all(nginx_port, scenario.requests);
        for ((request, got), want) in scenario.requests.iter().zip(&got).zip(&want) {
            let got = got.as_ref().map(|m| client_view(m, port, false));
            let want = want.as_ref().map(|m| client_view(m, nginx_port, true));
            if got != want {
                failures.push(format!(
                    "{}: {}\n  nginx: {:#?}\n  rginx: {:#?}\n  {}",
                    scenario.name,
                    shortened(request),
                    want.as_ref()
                        .map(|v| v.iter().map(|l| shortened(l)).collect::<Vec<_>>()),
                    got.as_ref()
                        .map(|v| v.iter().map(|l| shortened(l)).collect::<Vec<_>>()),
                    first_difference(want.as_deref(), got.as_deref()),
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} requests differ:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
