//! The names of every directive nginx documents, so that rginx can tell a
//! real nginx directive it does not implement (an error naming it) from a
//! typo (nginx's `unknown directive`).

/// nginx's directive index (nginx.org/en/docs/dirindex.html, all modules,
/// plus the few undocumented directives nginx's source declares), sorted.
const NGINX_DIRECTIVES: &str = include_str!("nginx_directives.txt");

/// Whether `name` is a directive nginx knows.
pub fn is_nginx_directive(name: &str) -> bool {
    NGINX_DIRECTIVES.lines().any(|n| n == name)
}

/// Every nginx directive name, in sorted order.
pub fn nginx_directives() -> impl Iterator<Item = &'static str> {
    NGINX_DIRECTIVES.lines()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_sorted_and_known_names_are_found() {
        let names: Vec<&str> = nginx_directives().collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        assert!(is_nginx_directive("auth_basic"));
        assert!(is_nginx_directive("proxy_pass"));
        assert!(!is_nginx_directive("proxy_passs"));
    }
}
