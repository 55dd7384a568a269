//! HTTP routes as Spin resolves them, and the `spin-*` request headers derived from a match.
//!
//! Priority is the one `routefinder` gives Spin: segment by segment, exact beats `:param`
//! beats a trailing wildcard, so the longest literal prefix wins. A route that appears twice is
//! served by its last declaration (Spin warns; we log the same warning).

use std::net::SocketAddr;

/// Routes under this prefix belong to the runtime (health, info), never to a component.
pub const WELL_KNOWN_PREFIX: &str = "/.well-known/spin/";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    #[error("route {0:?}: '...' is allowed only as the last segment ('/prefix/...')")]
    MisplacedWildcard(String),
    #[error("route {route:?} is not a valid route: {reason}")]
    Invalid { route: String, reason: String },
    #[error("a route must be a path or `{{ private = true }}`; `private = false` is meaningless")]
    PrivateFalse,
}

/// A route string from the manifest, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    raw: String,
}

impl RouteSpec {
    pub fn parse(raw: &str) -> Result<Self, RouteError> {
        let body = raw.strip_suffix("/...").unwrap_or(raw);
        if body.contains("...") || (raw == "..." || raw.ends_with("...") && !raw.ends_with("/..."))
        {
            return Err(RouteError::MisplacedWildcard(raw.to_owned()));
        }
        let spec = Self {
            raw: raw.to_owned(),
        };
        let (finder, _) = spec.finder_route();
        routefinder::RouteSpec::try_from(finder.as_str()).map_err(|reason| {
            RouteError::Invalid {
                route: raw.to_owned(),
                reason: reason.to_string(),
            }
        })?;
        Ok(spec)
    }

    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The route made absolute without a trailing slash (Spin's "based" route, base `/`).
    fn based(&self) -> String {
        let absolute = if self.raw.starts_with('/') {
            self.raw.clone()
        } else {
            format!("/{}", self.raw)
        };
        absolute
            .strip_suffix('/')
            .map(str::to_owned)
            .unwrap_or(absolute)
    }

    /// The routefinder pattern and whether it ends in a wildcard.
    fn finder_route(&self) -> (String, bool) {
        let based = self.based();
        if let Some(prefix) = based.strip_suffix("/...") {
            (format!("{prefix}/*"), true)
        } else if based.ends_with("/*") {
            (based, true)
        } else {
            (based, false)
        }
    }
}

#[derive(Debug, Clone)]
struct Handler {
    component: String,
    based_route: String,
    raw_route: String,
}

#[derive(Debug, Default)]
pub struct Router {
    inner: routefinder::Router<Handler>,
}

/// The result of routing one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub component: String,
    pub based_route: String,
    pub raw_route: String,
    /// What the wildcard matched, with a leading `/`; empty for exact routes.
    pub path_info: String,
    /// `:name` segments, in route order.
    pub params: Vec<(String, String)>,
}

impl RouteMatch {
    /// What Spin gives a component reached by service chaining: a catch-all route.
    pub fn synthetic(component: &str, path: &str) -> Self {
        Self {
            component: component.to_owned(),
            based_route: "/...".into(),
            raw_route: "/...".into(),
            path_info: path.to_owned(),
            params: Vec::new(),
        }
    }

    fn component_route(&self) -> &str {
        self.raw_route
            .strip_suffix("/...")
            .unwrap_or(&self.raw_route)
    }

    /// The `spin-*` headers a component receives, lowercase, in a fixed order.
    pub fn headers(&self, full_url: &str, client: SocketAddr) -> Vec<(String, String)> {
        let mut headers = vec![
            ("spin-path-info".to_owned(), self.path_info.clone()),
            ("spin-full-url".to_owned(), full_url.to_owned()),
            ("spin-matched-route".to_owned(), self.based_route.clone()),
            ("spin-base-path".to_owned(), "/".to_owned()),
            (
                "spin-raw-component-route".to_owned(),
                self.raw_route.clone(),
            ),
            (
                "spin-component-route".to_owned(),
                self.component_route().to_owned(),
            ),
            ("spin-client-addr".to_owned(), client.to_string()),
        ];
        for (name, value) in &self.params {
            headers.push((
                format!("spin-path-match-{}", name.to_ascii_lowercase()),
                value.clone(),
            ));
        }
        headers
    }
}

impl Router {
    /// Builds the router; returns the routes declared more than once (the last one wins).
    pub fn build<'a>(
        routes: impl IntoIterator<Item = (&'a str, &'a RouteSpec)>,
    ) -> Result<(Self, Vec<String>), RouteError> {
        // Deduplicate before routefinder sees the routes: its ordering never treats two specs as
        // equal, so it would keep both and the winner would be arbitrary.
        let mut entries: Vec<(String, Handler)> = Vec::new();
        let mut duplicates = Vec::new();
        for (component, spec) in routes {
            let (finder, _) = spec.finder_route();
            let handler = Handler {
                component: component.to_owned(),
                based_route: spec.based(),
                raw_route: spec.raw.clone(),
            };
            match entries.iter_mut().find(|(f, _)| *f == finder) {
                Some(existing) => {
                    duplicates.push(spec.raw.clone());
                    existing.1 = handler;
                }
                None => entries.push((finder, handler)),
            }
        }
        let mut inner = routefinder::Router::new();
        for (finder, handler) in entries {
            let route_spec =
                routefinder::RouteSpec::try_from(finder.as_str()).map_err(|reason| {
                    RouteError::Invalid {
                        route: handler.raw_route.clone(),
                        reason: reason.to_string(),
                    }
                })?;
            // Adding an already-parsed spec cannot fail.
            let Ok(()) = inner.add(route_spec, handler);
        }
        Ok((Self { inner }, duplicates))
    }

    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let found = self.inner.best_match(path)?;
        let handler = found.handler();
        let captures = found.captures();
        let path_info = match captures.wildcard() {
            None => String::new(),
            Some(w) => match (w.is_empty(), path.ends_with('/')) {
                (true, false) => String::new(),
                (true, true) => "/".to_owned(),
                (false, false) => format!("/{w}"),
                (false, true) => format!("/{w}/"),
            },
        };
        let params = captures
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Some(RouteMatch {
            component: handler.component.clone(),
            based_route: handler.based_route.clone(),
            raw_route: handler.raw_route.clone(),
            path_info,
            params,
        })
    }

    pub fn contains_reserved_route(&self) -> bool {
        self.inner
            .iter()
            .any(|(_, h)| h.based_route.starts_with(WELL_KNOWN_PREFIX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        let specs: Vec<(String, RouteSpec)> = routes
            .iter()
            .map(|(c, r)| {
                (
                    (*c).to_owned(),
                    RouteSpec::parse(r).unwrap_or_else(|e| panic!("{r}: {e}")),
                )
            })
            .collect();
        Router::build(specs.iter().map(|(c, s)| (c.as_str(), s)))
            .expect("router builds")
            .0
    }

    #[test]
    fn priority_table() {
        let r = router(&[
            ("catch-all", "/..."),
            ("exact-foo", "/foo"),
            ("foo-wild", "/foo/..."),
            ("foo-bar-wild", "/foo/bar/..."),
            ("user", "/users/:id"),
            ("user-me", "/users/me"),
            ("user-files", "/users/:id/files/..."),
            ("root", "/"),
        ]);
        // (path, component, path_info)
        let cases: &[(&str, &str, &str)] = &[
            ("/foo", "exact-foo", ""),
            // routefinder (and so Spin) lets an exact route absorb one trailing slash.
            ("/foo/", "exact-foo", ""),
            ("/foo/x", "foo-wild", "/x"),
            ("/foo/x/y", "foo-wild", "/x/y"),
            ("/foo/bar", "foo-bar-wild", ""),
            ("/foo/bar/baz", "foo-bar-wild", "/baz"),
            ("/foobar", "catch-all", "/foobar"),
            ("/users/me", "user-me", ""),
            ("/users/42", "user", ""),
            ("/users/42/files/a.txt", "user-files", "/a.txt"),
            ("/users/42/other", "catch-all", "/users/42/other"),
            ("/", "root", ""),
            ("/anything/else", "catch-all", "/anything/else"),
        ];
        for (path, component, info) in cases {
            let m = r
                .route(path)
                .unwrap_or_else(|| panic!("{path} should match"));
            assert_eq!(
                (m.component.as_str(), m.path_info.as_str()),
                (*component, *info),
                "{path}"
            );
        }
    }

    #[test]
    fn no_catch_all_means_no_match() {
        let r = router(&[("a", "/a"), ("b", "/b/..."), ("p", "/p/:x")]);
        for path in ["/", "/ab", "/a/b", "/bb", "/p", "/p/1/2", "/c"] {
            assert_eq!(r.route(path), None, "{path} must not match");
        }
        assert_eq!(r.route("/b").map(|m| m.component), Some("b".to_owned()));
    }

    #[test]
    fn params_become_headers() {
        let r = router(&[("c", "/shop/:category/items/:item_id")]);
        let m = r.route("/shop/books/items/7").expect("matches");
        assert_eq!(
            m.params,
            vec![
                ("category".to_owned(), "books".to_owned()),
                ("item_id".to_owned(), "7".to_owned())
            ]
        );
        let client: SocketAddr = "127.0.0.1:5555".parse().expect("addr");
        let headers = m.headers("http://h/shop/books/items/7?q=1", client);
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("spin-path-match-category"), Some("books"));
        assert_eq!(get("spin-path-match-item_id"), Some("7"));
        assert_eq!(
            get("spin-full-url"),
            Some("http://h/shop/books/items/7?q=1")
        );
        assert_eq!(get("spin-client-addr"), Some("127.0.0.1:5555"));
        assert_eq!(get("spin-path-info"), Some(""));
    }

    #[test]
    fn wildcard_headers_match_spin() {
        let r = router(&[("c", "/foo/...")]);
        let m = r.route("/foo/bar").expect("matches");
        let client: SocketAddr = "10.0.0.1:1".parse().expect("addr");
        let headers = m.headers("https://fermyon.dev/foo/bar", client);
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("spin-path-info").as_deref(), Some("/bar"));
        assert_eq!(get("spin-matched-route").as_deref(), Some("/foo/..."));
        assert_eq!(get("spin-raw-component-route").as_deref(), Some("/foo/..."));
        assert_eq!(get("spin-component-route").as_deref(), Some("/foo"));
        assert_eq!(get("spin-base-path").as_deref(), Some("/"));
    }

    #[test]
    fn routes_are_normalised() {
        let r = router(&[("c", "api/v1/")]);
        let m = r
            .route("/api/v1")
            .expect("relative, trailing slash route still matches");
        assert_eq!(m.based_route, "/api/v1");
        assert_eq!(m.raw_route, "api/v1/");
    }

    #[test]
    fn duplicates_are_reported_and_last_wins() {
        let a = RouteSpec::parse("/x").expect("valid");
        let b = RouteSpec::parse("/x").expect("valid");
        let (r, dups) = Router::build([("first", &a), ("second", &b)]).expect("builds");
        assert_eq!(dups, vec!["/x".to_owned()]);
        assert_eq!(
            r.route("/x").map(|m| m.component),
            Some("second".to_owned())
        );
    }

    #[test]
    fn misplaced_wildcards_are_rejected() {
        for bad in ["/a/.../b", "/a...", "..."] {
            assert!(RouteSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chaining_uses_a_synthetic_catch_all() {
        let m = RouteMatch::synthetic("auth", "/login");
        let client: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let headers = m.headers("http://auth.spin.internal/login", client);
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("spin-path-info").as_deref(), Some("/login"));
        assert_eq!(get("spin-component-route").as_deref(), Some(""));
    }
}
