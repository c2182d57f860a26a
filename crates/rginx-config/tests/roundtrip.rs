//! Property: printing a tree and parsing it again gives the same tree, and
//! every value survives nginx's quoting and escaping rules.

use std::path::Path;

use proptest::prelude::*;
use rginx_config::{parse_str, quote_word, Directive};

/// A directive as plain values, without positions.
#[derive(Debug, Clone, PartialEq)]
struct Shape {
    name: String,
    args: Vec<String>,
    block: Option<Vec<Shape>>,
}

fn shape(d: &Directive) -> Shape {
    Shape {
        name: d.name.as_str().to_string(),
        args: d.args.iter().map(|a| a.as_str().to_string()).collect(),
        block: d
            .block
            .as_ref()
            .map(|b| b.directives.iter().map(shape).collect()),
    }
}

fn render(shapes: &[Shape], out: &mut String) {
    for s in shapes {
        out.push_str(&quote_word(&s.name));
        for a in &s.args {
            out.push(' ');
            out.push_str(&quote_word(a));
        }
        match &s.block {
            None => out.push_str(";\n"),
            Some(children) => {
                out.push_str(" {\n");
                render(children, out);
                out.push_str("}\n");
            }
        }
    }
}

fn value() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::char::range('a', 'z'),
            2 => prop::char::range('0', '9'),
            1 => prop::sample::select(vec![' ', ';', '{', '}', '#', '"', '\'', '\\', '$', '\t', '\n', '/', '.', '~', '*', '^', '=', '(', ')', 'é']),
        ],
        0..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z_]{0,10}".prop_filter("include is expanded", |n| n != "include")
}

fn tree() -> impl Strategy<Value = Vec<Shape>> {
    let leaf = (name(), prop::collection::vec(value(), 0..4)).prop_map(|(name, args)| Shape {
        name,
        args,
        block: None,
    });
    let node = leaf.prop_recursive(3, 24, 4, |inner| {
        (
            name(),
            prop::collection::vec(value(), 0..3),
            prop::collection::vec(inner, 0..4),
        )
            .prop_map(|(name, args, children)| Shape {
                name,
                args,
                block: Some(children),
            })
    });
    prop::collection::vec(node, 0..5)
}

proptest! {
    #[test]
    fn values_survive_quoting(shapes in tree()) {
        let mut text = String::new();
        render(&shapes, &mut text);
        let parsed = parse_str(Path::new("t.conf"), &text);
        prop_assert!(parsed.error.is_none(), "{:?} in\n{}", parsed.error, text);
        let got: Vec<Shape> = parsed.config.directives.iter().map(shape).collect();
        prop_assert_eq!(got, shapes);
    }

    #[test]
    fn printing_and_parsing_again_gives_the_same_tree(shapes in tree()) {
        let mut text = String::new();
        render(&shapes, &mut text);
        let first = parse_str(Path::new("t.conf"), &text);
        let printed = first.config.to_string();
        let second = parse_str(Path::new("t.conf"), &printed);
        prop_assert!(second.error.is_none());
        let a: Vec<Shape> = first.config.directives.iter().map(shape).collect();
        let b: Vec<Shape> = second.config.directives.iter().map(shape).collect();
        prop_assert_eq!(a, b);
        let raws = |c: &rginx_config::Config| -> Vec<String> {
            fn walk(ds: &[Directive], out: &mut Vec<String>) {
                for d in ds {
                    out.push(d.name.raw().to_string());
                    out.extend(d.args.iter().map(|a| a.raw().to_string()));
                    walk(d.children(), out);
                }
            }
            let mut out = Vec::new();
            walk(&c.directives, &mut out);
            out
        };
        prop_assert_eq!(raws(&first.config), raws(&second.config));
    }
}
