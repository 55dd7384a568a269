//! The web page at `/`: static HTML, CSS and JavaScript built into the component (no framework,
//! no build step). The page talks to the same `/api/v1` any client uses.
//!
//! Every answer carries a strict Content-Security-Policy (`default-src 'self'`, no inline
//! script or style), an `ETag` of its content and `Cache-Control: no-cache`, so a browser
//! revalidates (a cheap 304) and never mixes an old script with a new page.

use crate::http_io::Reply;

pub const INDEX_HTML: &str = include_str!("web/index.html");
pub const APP_CSS: &str = include_str!("web/app.css");
pub const APP_JS: &str = include_str!("web/app.js");

/// What the page may load: only its own files, and its own API through `fetch`/XHR. `blob:`
/// is for the mp3 a download hands to the browser; `data:` for the empty favicon.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One of the page's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    Page,
    Styles,
    Script,
}

impl Asset {
    /// The file at a path, if the path is one of the page's.
    pub fn at(path: &str) -> Option<Asset> {
        match path {
            "/" | "/index.html" | "/confirm" => Some(Asset::Page),
            "/app.css" => Some(Asset::Styles),
            "/app.js" => Some(Asset::Script),
            _ => None,
        }
    }

    pub fn body(self) -> &'static str {
        match self {
            Asset::Page => INDEX_HTML,
            Asset::Styles => APP_CSS,
            Asset::Script => APP_JS,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Asset::Page => "text/html; charset=utf-8",
            Asset::Styles => "text/css; charset=utf-8",
            Asset::Script => "text/javascript; charset=utf-8",
        }
    }

    /// A strong validator: the FNV-1a hash of the content, computed at compile time.
    pub fn etag(self) -> &'static str {
        match self {
            Asset::Page => PAGE_ETAG,
            Asset::Styles => STYLES_ETAG,
            Asset::Script => SCRIPT_ETAG,
        }
    }
}

const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// `"` + 16 hex digits + `"`, at compile time.
const fn etag_of(text: &str) -> [u8; 18] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hash = fnv1a(text.as_bytes());
    let mut out = [b'"'; 18];
    let mut i = 0;
    while i < 16 {
        out[1 + i] = HEX[((hash >> (60 - 4 * i)) & 0xf) as usize];
        i += 1;
    }
    out
}

const PAGE_ETAG_BYTES: [u8; 18] = etag_of(INDEX_HTML);
const STYLES_ETAG_BYTES: [u8; 18] = etag_of(APP_CSS);
const SCRIPT_ETAG_BYTES: [u8; 18] = etag_of(APP_JS);
const PAGE_ETAG: &str = as_str(&PAGE_ETAG_BYTES);
const STYLES_ETAG: &str = as_str(&STYLES_ETAG_BYTES);
const SCRIPT_ETAG: &str = as_str(&SCRIPT_ETAG_BYTES);

const fn as_str(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(_) => panic!("an ETag is ASCII"),
    }
}

/// Whether an `If-None-Match` header names this validator (or is `*`).
fn matches(if_none_match: Option<&str>, etag: &str) -> bool {
    if_none_match.is_some_and(|v| {
        v.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == etag)
    })
}

/// The answer for one of the page's files; `304 Not Modified` when the browser's copy is current.
pub fn reply(asset: Asset, if_none_match: Option<&str>) -> Reply {
    let etag = asset.etag();
    let mut reply = if matches(if_none_match, etag) {
        Reply::empty(304)
    } else {
        Reply::text(200, asset.content_type(), asset.body())
    };
    reply.headers.extend(
        [
            ("etag", etag),
            ("cache-control", "no-cache"),
            ("content-security-policy", CONTENT_SECURITY_POLICY),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
            ("x-frame-options", "DENY"),
            (
                "permissions-policy",
                "camera=(), microphone=(), geolocation=()",
            ),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned())),
    );
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
        reply
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn paths_name_the_files() {
        assert_eq!(Asset::at("/"), Some(Asset::Page));
        assert_eq!(Asset::at("/index.html"), Some(Asset::Page));
        assert_eq!(Asset::at("/confirm"), Some(Asset::Page));
        assert_eq!(Asset::at("/app.css"), Some(Asset::Styles));
        assert_eq!(Asset::at("/app.js"), Some(Asset::Script));
        assert_eq!(Asset::at("/app.js.map"), None);
        assert_eq!(Asset::at("/web/app.js"), None);
    }

    #[test]
    fn each_file_has_its_type_policy_and_caching() {
        for (asset, ty) in [
            (Asset::Page, "text/html; charset=utf-8"),
            (Asset::Styles, "text/css; charset=utf-8"),
            (Asset::Script, "text/javascript; charset=utf-8"),
        ] {
            let r = reply(asset, None);
            assert_eq!(r.status, 200);
            assert_eq!(header(&r, "content-type"), Some(ty));
            assert_eq!(header(&r, "cache-control"), Some("no-cache"));
            assert_eq!(header(&r, "x-content-type-options"), Some("nosniff"));
            let csp = header(&r, "content-security-policy").unwrap();
            assert!(csp.starts_with("default-src 'self';"), "{csp}");
            assert!(!csp.contains("unsafe"), "no unsafe-inline/eval: {csp}");
            assert_eq!(r.body, asset.body().as_bytes());
        }
    }

    #[test]
    fn etags_differ_per_file_and_a_match_is_a_304() {
        let tags = [Asset::Page, Asset::Styles, Asset::Script].map(Asset::etag);
        assert!(tags.iter().all(|t| t.len() == 18 && t.starts_with('"')));
        assert!(tags[0] != tags[1] && tags[1] != tags[2] && tags[0] != tags[2]);
        let etag = Asset::Script.etag();
        let r = reply(Asset::Script, Some(&format!("\"x\", W/{etag}")));
        assert_eq!(r.status, 304);
        assert!(r.body.is_empty());
        assert_eq!(header(&r, "etag"), Some(etag));
        assert_eq!(reply(Asset::Script, Some("\"other\"")).status, 200);
        assert_eq!(reply(Asset::Page, Some("*")).status, 304);
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        // The CSP would block them; keep the page working under it.
        let html = INDEX_HTML.to_ascii_lowercase();
        assert!(html.contains(r#"<script src="/app.js" defer></script>"#));
        assert_eq!(html.matches("<script").count(), 1, "one external script");
        assert!(!html.contains("<style"));
        assert!(!html.contains(" style="));
        assert!(!html.contains(" onclick=") && !html.contains(" onload="));
        assert!(html.contains(r#"<link rel="stylesheet" href="/app.css">"#));
        assert!(html.contains(r#"<html lang="en">"#));
        assert!(html.contains(r#"name="viewport""#));
        assert!(html.contains("aria-live"));
    }

    #[test]
    fn every_form_field_has_a_label() {
        for id in ["email", "password", "file-input", "profile", "loudness"] {
            assert!(
                INDEX_HTML.contains(&format!("<label for=\"{id}\"")),
                "a <label for=\"{id}\">"
            );
            assert!(INDEX_HTML.contains(&format!("id=\"{id}\"")), "#{id}");
        }
    }

    #[test]
    fn the_script_uses_the_api_it_is_served_with() {
        for path in [
            "'/api/v1'",
            "'/sessions'",
            "'/users'",
            "'/jobs'",
            "/mp3",
            "'/uploads'",
        ] {
            assert!(APP_JS.contains(path), "app.js uses {path}");
        }
        assert!(APP_JS.contains("sessionStorage"));
        // The token stays per tab: localStorage (shared by every tab, kept after closing) holds
        // only the unfinished uploads' records, whose writer takes no token.
        let uses: Vec<&str> = APP_JS.split("localStorage.").skip(1).collect();
        assert!(
            !uses.is_empty(),
            "unfinished uploads are kept in localStorage"
        );
        for rest in uses {
            assert!(
                rest.starts_with("getItem(UPLOADS_KEY)")
                    || rest.starts_with("setItem(UPLOADS_KEY, "),
                "localStorage is used only for the uploads' records: {}",
                &rest[..rest.len().min(60)]
            );
        }
        let record = APP_JS
            .split("record = {")
            .nth(1)
            .and_then(|r| r.split('}').next())
            .expect("the upload record's literal");
        assert!(
            !record.contains("token"),
            "no token in an upload record: {record}"
        );
    }
}
