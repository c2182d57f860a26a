//! Location matching, compiled once per configuration load: nginx's
//! `ngx_http_core_find_location` / `ngx_http_core_find_static_location`.
//!
//! Per nesting level, exact (`=`) and prefix (plain and `^~`) locations
//! live in a byte trie, so the longest prefix is found in one walk over the
//! URI without allocating; regex locations are tried in configuration order.
//! The rules (<https://nginx.org/en/docs/http/ngx_http_core_module.html#location>):
//! - an exact match of the whole URI stops the search;
//! - a prefix location whose name is the URI plus `/` and that proxies
//!   (`auto_redirect`) answers 301, before regexes are tried, unless an
//!   exact or prefix location matches the URI itself;
//! - otherwise the longest prefix is remembered and its nested locations are
//!   searched first; then, unless that prefix is `^~`, the regexes of this
//!   level in order; a matching regex's nested locations are searched too;
//! - named locations are never matched.

use crate::pcre::{MatchError, Pcre};

/// Index of a location in a [`LocationTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocationId(pub u32);

/// What a location needs for matching.
#[derive(Debug, Clone)]
pub struct LocationSpec {
    /// How it matches.
    pub kind: SpecKind,
    /// Nested locations (indexes into the table's specs).
    pub nested: Vec<LocationId>,
    /// A prefix (or exact) location ending in `/` that proxies: nginx
    /// redirects the URI without the slash to it.
    pub auto_redirect: bool,
}

/// Matching kinds.
#[derive(Debug, Clone)]
pub enum SpecKind {
    /// `= name`
    Exact(String),
    /// `name` or `^~ name`
    Prefix {
        /// The prefix.
        name: String,
        /// `^~`
        no_regex: bool,
    },
    /// `~ re` / `~* re`, compiled.
    Regex(Pcre),
    /// `@name`: only reachable by name.
    Named(String),
}

#[derive(Debug, Default, Clone)]
struct TrieNode {
    /// Children by next byte, sorted by byte.
    edges: Vec<(u8, u32)>,
    exact: Option<LocationId>,
    prefix: Option<LocationId>,
    /// The prefix or exact location here redirects the URI without its `/`.
    auto_redirect: Option<LocationId>,
}

/// The exact and prefix locations and the regexes of one nesting level.
#[derive(Debug, Default, Clone)]
struct Level {
    nodes: Vec<TrieNode>,
    regexes: Vec<LocationId>,
}

/// The result of matching a URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocationMatch {
    /// The location that handles the request.
    Found(LocationId),
    /// nginx's automatic 301 to the location's name (the URI plus `/`).
    Redirect(LocationId),
    /// No location matches.
    None,
    /// A regex location's match failed (PCRE2's match limit): nginx
    /// answers 500 (`ngx_http_core_find_location` returns `NGX_ERROR`),
    /// in the configuration of the longest prefix found before it.
    Failed {
        /// The longest matching prefix location, if any.
        prefix: Option<LocationId>,
        /// The regex location whose match failed.
        regex: LocationId,
        /// PCRE2's error.
        error: MatchError,
    },
}

/// Matches a regex of the configuration (which lives for `'p`) against a
/// subject, and may keep its captures.
pub type RegexRunner<'p, 'r> = dyn FnMut(&'p Pcre, &[u8]) -> Result<bool, MatchError> + 'r;

/// What one level's search found (nginx's return codes).
enum Step {
    /// `NGX_OK`: exact match or a regex (search over).
    Final(LocationId),
    /// `NGX_DONE`: auto redirect.
    Redirect(LocationId),
    /// `NGX_AGAIN` / `NGX_DECLINED`: the best location so far, if any.
    Partial(Option<LocationId>),
    /// A regex's match failed: the best prefix so far, the regex.
    Failed(Option<LocationId>, LocationId, MatchError),
}

/// All locations of one server, compiled.
#[derive(Debug, Clone)]
pub struct LocationTable {
    specs: Vec<LocationSpec>,
    /// Level of each location's nested locations (same index as specs);
    /// index `specs.len()` is the server level.
    levels: Vec<Level>,
}

impl LocationTable {
    /// Compiles a table: `specs[i].nested` name nested locations, and
    /// `top` lists the server-level ones, both in configuration order.
    pub fn new(specs: Vec<LocationSpec>, top: &[LocationId]) -> LocationTable {
        let mut levels = Vec::with_capacity(specs.len() + 1);
        for spec in &specs {
            levels.push(build_level(&specs, &spec.nested));
        }
        levels.push(build_level(&specs, top));
        LocationTable { specs, levels }
    }

    /// The spec of a location.
    pub fn spec(&self, id: LocationId) -> &LocationSpec {
        &self.specs[id.0 as usize]
    }

    /// The named location `@name` (`name` with its `@`).
    pub fn named(&self, name: &str) -> Option<LocationId> {
        self.specs
            .iter()
            .position(|s| matches!(&s.kind, SpecKind::Named(n) if n == name))
            .map(|i| LocationId(i as u32))
    }

    /// Finds the location for a normalised URI (`$uri`, the decoded bytes).
    /// `run` matches a regex location's pattern against the URI (the
    /// caller keeps the captures of the one that matches); regexes are
    /// tried in configuration order, as nginx does.
    pub fn find<'p>(&'p self, uri: &[u8], run: &mut RegexRunner<'p, '_>) -> LocationMatch {
        let top = self.specs.len();
        match self.search(top, uri, run) {
            Step::Final(id) => LocationMatch::Found(id),
            Step::Redirect(id) => LocationMatch::Redirect(id),
            Step::Partial(Some(id)) => LocationMatch::Found(id),
            Step::Partial(None) => LocationMatch::None,
            Step::Failed(prefix, regex, error) => LocationMatch::Failed {
                prefix,
                regex,
                error,
            },
        }
    }

    fn search<'p>(&'p self, level: usize, uri: &[u8], run: &mut RegexRunner<'p, '_>) -> Step {
        let lv = &self.levels[level];
        let mut best = None;
        let mut no_regex = false;
        match static_search(lv, uri) {
            StaticResult::Exact(id) => return Step::Final(id),
            StaticResult::Redirect(id) => return Step::Redirect(id),
            StaticResult::Prefix(id) => {
                best = Some(id);
                if let SpecKind::Prefix { no_regex: nr, .. } = self.spec(id).kind {
                    no_regex = nr;
                }
                match self.search(id.0 as usize, uri, run) {
                    Step::Partial(Some(inner)) => best = Some(inner),
                    Step::Partial(None) => {}
                    done => return done,
                }
            }
            StaticResult::None => {}
        }
        if !no_regex {
            for &id in &lv.regexes {
                let SpecKind::Regex(re) = &self.spec(id).kind else {
                    continue;
                };
                match run(re, uri) {
                    Ok(false) => continue,
                    Ok(true) => {}
                    Err(e) => return Step::Failed(best, id, e),
                }
                // the regex location's own nested locations
                return match self.search(id.0 as usize, uri, run) {
                    Step::Partial(None) => Step::Final(id),
                    Step::Partial(Some(inner)) => Step::Final(inner),
                    other => other,
                };
            }
        }
        Step::Partial(best)
    }
}

enum StaticResult {
    Exact(LocationId),
    Redirect(LocationId),
    Prefix(LocationId),
    None,
}

fn static_search(level: &Level, uri: &[u8]) -> StaticResult {
    if level.nodes.is_empty() {
        return StaticResult::None;
    }
    let mut node = &level.nodes[0];
    let mut longest = node.prefix;
    for &b in uri {
        let Ok(i) = node.edges.binary_search_by_key(&b, |e| e.0) else {
            return longest.map_or(StaticResult::None, StaticResult::Prefix);
        };
        node = &level.nodes[node.edges[i].1 as usize];
        if node.prefix.is_some() {
            longest = node.prefix;
        }
    }
    // the whole URI was consumed: an equal-length match wins
    if let Some(id) = node.exact {
        return StaticResult::Exact(id);
    }
    if let Some(id) = node.prefix {
        return StaticResult::Prefix(id);
    }
    if let Ok(i) = node.edges.binary_search_by_key(&b'/', |e| e.0) {
        if let Some(id) = level.nodes[node.edges[i].1 as usize].auto_redirect {
            return StaticResult::Redirect(id);
        }
    }
    longest.map_or(StaticResult::None, StaticResult::Prefix)
}

fn build_level(specs: &[LocationSpec], members: &[LocationId]) -> Level {
    let mut level = Level {
        nodes: vec![TrieNode::default()],
        regexes: Vec::new(),
    };
    for &id in members {
        let spec = &specs[id.0 as usize];
        let name = match &spec.kind {
            SpecKind::Exact(n) | SpecKind::Prefix { name: n, .. } => n,
            SpecKind::Regex(_) => {
                level.regexes.push(id);
                continue;
            }
            SpecKind::Named(_) => continue,
        };
        let mut at = 0usize;
        for &b in name.as_bytes() {
            at = match level.nodes[at].edges.binary_search_by_key(&b, |e| e.0) {
                Ok(i) => level.nodes[at].edges[i].1 as usize,
                Err(i) => {
                    let new = level.nodes.len();
                    level.nodes.push(TrieNode::default());
                    level.nodes[at].edges.insert(i, (b, new as u32));
                    new
                }
            };
        }
        let node = &mut level.nodes[at];
        // the first of duplicates wins (validation reports duplicates)
        match spec.kind {
            SpecKind::Exact(_) => {
                node.exact.get_or_insert(id);
            }
            _ => {
                node.prefix.get_or_insert(id);
            }
        }
        if spec.auto_redirect {
            node.auto_redirect.get_or_insert(id);
        }
    }
    level
}

/// A slow, direct transcription of the documented algorithm, for tests:
/// compares every location by string operations.
pub fn reference_find(table: &LocationTable, uri: &[u8]) -> LocationMatch {
    fn level_members(table: &LocationTable, level: usize) -> Vec<LocationId> {
        if level == table.specs.len() {
            // server level: every location that is nobody's nested one
            let nested: Vec<LocationId> =
                table.specs.iter().flat_map(|s| s.nested.clone()).collect();
            (0..table.specs.len() as u32)
                .map(LocationId)
                .filter(|id| !nested.contains(id))
                .collect()
        } else {
            table.specs[level].nested.clone()
        }
    }
    fn go(table: &LocationTable, level: usize, uri: &[u8]) -> Step {
        let members = level_members(table, level);
        // 1. exact
        for &id in &members {
            if let SpecKind::Exact(n) = &table.spec(id).kind {
                if n.as_bytes() == uri {
                    return Step::Final(id);
                }
            }
        }
        // 2. longest prefix
        let mut best: Option<(usize, LocationId)> = None;
        for &id in &members {
            if let SpecKind::Prefix { name, .. } = &table.spec(id).kind {
                if uri.starts_with(name.as_bytes()) && best.is_none_or(|(len, _)| name.len() > len)
                {
                    best = Some((name.len(), id));
                }
            }
        }
        // auto redirect: URI + "/" names a redirecting location, and no
        // location has the URI's own length
        if best.is_none_or(|(len, _)| len < uri.len()) {
            for &id in &members {
                let spec = table.spec(id);
                let name = match &spec.kind {
                    SpecKind::Exact(n) | SpecKind::Prefix { name: n, .. } => n,
                    _ => continue,
                };
                if spec.auto_redirect
                    && name.len() == uri.len() + 1
                    && name.as_bytes().starts_with(uri)
                    && name.ends_with('/')
                {
                    return Step::Redirect(id);
                }
            }
        }
        let mut result = None;
        let mut no_regex = false;
        if let Some((_, id)) = best {
            result = Some(id);
            if let SpecKind::Prefix { no_regex: nr, .. } = table.spec(id).kind {
                no_regex = nr;
            }
            match go(table, id.0 as usize, uri) {
                Step::Partial(Some(inner)) => result = Some(inner),
                Step::Partial(None) => {}
                done => return done,
            }
        }
        if !no_regex {
            for &id in &members {
                if let SpecKind::Regex(re) = &table.spec(id).kind {
                    match re.is_match(uri) {
                        Ok(false) => {}
                        Ok(true) => {
                            return match go(table, id.0 as usize, uri) {
                                Step::Partial(None) => Step::Final(id),
                                Step::Partial(Some(inner)) => Step::Final(inner),
                                other => other,
                            };
                        }
                        Err(e) => return Step::Failed(result, id, e),
                    }
                }
            }
        }
        Step::Partial(result)
    }
    match go(table, table.specs.len(), uri) {
        Step::Final(id) | Step::Partial(Some(id)) => LocationMatch::Found(id),
        Step::Redirect(id) => LocationMatch::Redirect(id),
        Step::Partial(None) => LocationMatch::None,
        Step::Failed(prefix, regex, error) => LocationMatch::Failed {
            prefix,
            regex,
            error,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(name: &str) -> LocationSpec {
        LocationSpec {
            kind: SpecKind::Prefix {
                name: name.into(),
                no_regex: false,
            },
            nested: vec![],
            auto_redirect: false,
        }
    }

    fn table(specs: Vec<LocationSpec>) -> LocationTable {
        let nested: Vec<LocationId> = specs.iter().flat_map(|s| s.nested.clone()).collect();
        let top: Vec<LocationId> = (0..specs.len() as u32)
            .map(LocationId)
            .filter(|id| !nested.contains(id))
            .collect();
        LocationTable::new(specs, &top)
    }

    fn find(t: &LocationTable, uri: &str) -> LocationMatch {
        let fast = t.find(uri.as_bytes(), &mut Pcre::is_match);
        assert_eq!(fast, reference_find(t, uri.as_bytes()), "{uri}");
        fast
    }

    use LocationMatch::{Found, Redirect};

    #[test]
    fn exact_beats_prefix_and_longest_prefix_wins() {
        let mut exact = prefix("/a");
        exact.kind = SpecKind::Exact("/a".into());
        let t = table(vec![prefix("/"), prefix("/a"), exact, prefix("/abc")]);
        assert_eq!(find(&t, "/a"), Found(LocationId(2)));
        assert_eq!(find(&t, "/ab"), Found(LocationId(1)));
        assert_eq!(find(&t, "/abcd"), Found(LocationId(3)));
        assert_eq!(find(&t, "/x"), Found(LocationId(0)));
    }

    #[test]
    fn regexes_in_order_unless_no_regex() {
        let re = |p: &str| LocationSpec {
            kind: SpecKind::Regex(Pcre::compile(p, false).unwrap()),
            nested: vec![],
            auto_redirect: false,
        };
        let mut static_ = prefix("/static/");
        static_.kind = SpecKind::Prefix {
            name: "/static/".into(),
            no_regex: true,
        };
        let t = table(vec![prefix("/"), re(r"\.php$"), re(r"^/a"), static_]);
        assert_eq!(find(&t, "/a.php"), Found(LocationId(1)));
        assert_eq!(find(&t, "/ab"), Found(LocationId(2)));
        assert_eq!(find(&t, "/static/x.php"), Found(LocationId(3)));
        assert_eq!(find(&t, "/b"), Found(LocationId(0)));
    }

    #[test]
    fn nested_locations_are_searched_before_outer_regexes() {
        let mut outer = prefix("/a/");
        outer.nested = vec![LocationId(1), LocationId(2)];
        let inner = prefix("/a/b/");
        let inner_re = LocationSpec {
            kind: SpecKind::Regex(Pcre::compile(r"\.jpg$", false).unwrap()),
            nested: vec![],
            auto_redirect: false,
        };
        let outer_re = LocationSpec {
            kind: SpecKind::Regex(Pcre::compile(r"\.(jpg|png)$", false).unwrap()),
            nested: vec![],
            auto_redirect: false,
        };
        let t = table(vec![outer, inner, inner_re, outer_re]);
        assert_eq!(find(&t, "/a/x.jpg"), Found(LocationId(2)));
        assert_eq!(find(&t, "/a/x.png"), Found(LocationId(3)));
        assert_eq!(find(&t, "/a/b/c"), Found(LocationId(1)));
        assert_eq!(find(&t, "/x.png"), Found(LocationId(3)));
    }

    #[test]
    fn auto_redirect_unless_the_uri_itself_matches() {
        let mut ws = prefix("/ws/");
        ws.auto_redirect = true;
        let t = table(vec![prefix("/"), ws.clone()]);
        assert_eq!(find(&t, "/ws"), Redirect(LocationId(1)));
        assert_eq!(find(&t, "/ws/x"), Found(LocationId(1)));
        let mut exact = prefix("/ws");
        exact.kind = SpecKind::Exact("/ws".into());
        let t = table(vec![prefix("/"), ws, exact]);
        assert_eq!(find(&t, "/ws"), Found(LocationId(2)));
    }
}
