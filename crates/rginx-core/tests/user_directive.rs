//! `user`: checked against the system's accounts when running as root (as
//! nginx does), ignored with nginx's warning otherwise.

use std::net::SocketAddr;
use std::path::Path;

use rginx_core::resolve::{LiteralResolver, Resolver};
use rginx_core::{check_text, BuildOptions};

/// Knows one user, `www-data`, and one group, `www-data`.
struct Accounts;

impl Resolver for Accounts {
    fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        LiteralResolver.resolve(host, port)
    }

    fn user_exists(&self, name: &str) -> bool {
        name == "www-data"
    }

    fn group_exists(&self, name: &str) -> bool {
        name == "www-data"
    }
}

fn messages(text: &str, as_root: bool) -> Vec<String> {
    let options = BuildOptions {
        as_root,
        ..BuildOptions::default()
    };
    let (_, checked) = check_text(Path::new("u.conf"), text, &Accounts, options, false);
    checked
        .diagnostics
        .iter()
        .map(|d| d.message.clone())
        .collect()
}

#[test]
fn as_root_the_accounts_must_exist() {
    assert!(messages("user www-data;\nevents {}\n", true).is_empty());
    // the group defaults to the user's name
    assert_eq!(
        messages("user nobody;\nevents {}\n", true),
        ["getpwnam(\"nobody\") failed"]
    );
    assert_eq!(
        messages("user www-data nogroup;\nevents {}\n", true),
        ["getgrnam(\"nogroup\") failed"]
    );
}

#[test]
fn otherwise_user_is_ignored_with_nginx_warning() {
    assert_eq!(
        messages("user nobody;\nevents {}\n", false),
        ["the \"user\" directive makes sense only if the master process runs with super-user privileges, ignored"]
    );
}
