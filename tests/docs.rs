//! docs/directives.md must match the directive table in code.

mod common;

#[test]
fn directive_table_doc_matches_code() {
    let path = common::root().join("docs/directives.md");
    let generated = rginx_core::docs::directives_markdown();
    if std::env::var_os("RGINX_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write docs/directives.md");
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "docs/directives.md is out of date: run `RGINX_BLESS=1 cargo test --test docs`"
    );
}

#[test]
fn every_table_directive_is_a_real_nginx_directive() {
    for spec in rginx_core::table::DIRECTIVES {
        assert!(
            rginx_core::names::is_nginx_directive(spec.name),
            "{} is not in nginx's directive index",
            spec.name
        );
    }
}
