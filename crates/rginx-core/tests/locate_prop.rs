//! Property: the compiled location matcher agrees with the slow reference
//! written straight from the documented algorithm
//! (<https://nginx.org/en/docs/http/ngx_http_core_module.html#location>).

use proptest::prelude::*;
use rginx_core::locate::{reference_find, LocationId, LocationSpec, LocationTable, SpecKind};
use rginx_core::pcre::Pcre;

#[derive(Debug, Clone)]
enum Gen {
    Exact(String),
    Prefix(String, bool, bool),
    Regex(&'static str),
}

const PATTERNS: &[&str] = &["a$", "^/b", "ab", "/a/", "^/$", "b/", r"\.x$"];

fn name() -> impl Strategy<Value = String> {
    "/[ab/.x]{0,4}"
}

fn spec() -> impl Strategy<Value = Gen> {
    prop_oneof![
        name().prop_map(Gen::Exact),
        (name(), any::<bool>(), any::<bool>()).prop_map(|(n, nr, ar)| Gen::Prefix(n, nr, ar)),
        prop::sample::select(PATTERNS).prop_map(Gen::Regex),
    ]
}

fn to_spec(g: &Gen) -> LocationSpec {
    let (kind, auto_redirect) = match g {
        Gen::Exact(n) => (SpecKind::Exact(n.clone()), n.ends_with('/') && n.len() > 1),
        Gen::Prefix(n, no_regex, redirect) => (
            SpecKind::Prefix {
                name: n.clone(),
                no_regex: *no_regex,
            },
            *redirect && n.ends_with('/'),
        ),
        Gen::Regex(p) => (SpecKind::Regex(Pcre::compile(p, false).unwrap()), false),
    };
    LocationSpec {
        kind,
        nested: vec![],
        auto_redirect,
    }
}

/// Top-level locations, each with optional nested ones (names extended
/// from the parent's for prefixes, as validation requires).
fn tree() -> impl Strategy<Value = Vec<(Gen, Vec<Gen>)>> {
    prop::collection::vec((spec(), prop::collection::vec(spec(), 0..3)), 1..8)
}

fn build(tree: &[(Gen, Vec<Gen>)]) -> LocationTable {
    let mut specs = Vec::new();
    let mut top = Vec::new();
    for (parent, children) in tree {
        let pid = specs.len();
        specs.push(to_spec(parent));
        top.push(LocationId(pid as u32));
        // only prefix and regex parents may have nested locations
        if matches!(parent, Gen::Exact(_)) {
            continue;
        }
        for child in children {
            let child = match (parent, child) {
                (Gen::Prefix(p, ..), Gen::Exact(n)) => Gen::Exact(format!("{p}{}", &n[1..])),
                (Gen::Prefix(p, ..), Gen::Prefix(n, nr, ar)) => {
                    Gen::Prefix(format!("{p}{}", &n[1..]), *nr, *ar)
                }
                (Gen::Regex(_), Gen::Exact(_) | Gen::Prefix(..)) => continue,
                (_, c) => c.clone(),
            };
            let cid = specs.len();
            specs.push(to_spec(&child));
            specs[pid].nested.push(LocationId(cid as u32));
        }
    }
    LocationTable::new(specs, &top)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn compiled_matcher_agrees_with_reference(t in tree(), uri in "/[ab/.x]{0,7}") {
        let table = build(&t);
        let fast = table.find(uri.as_bytes(), &mut Pcre::is_match);
        prop_assert_eq!(fast, reference_find(&table, uri.as_bytes()));
    }
}
