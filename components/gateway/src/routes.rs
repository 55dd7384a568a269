//! Which handler a method and path go to. Pure, so every rule is unit-tested.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    Ready,
    OpenApi,
    SignUp,
    /// Redeem the token of a confirmation email.
    ConfirmEmail,
    /// Send the confirmation link again.
    ConfirmationEmail,
    LogIn,
    /// `DELETE /api/v1/account`: the account deletes itself, with its password.
    DeleteAccount,
    ListJobs,
    Upload,
    GetJob(String),
    DeleteJob(String),
    GetMp3(String),
    /// The account's webhook.
    GetWebhook,
    PutWebhook,
    DeleteWebhook,
    /// tus: what the server supports (`OPTIONS /api/v1/uploads[/{id}]`).
    UploadOptions,
    /// tus creation: `POST /api/v1/uploads`.
    BeginUpload,
    /// tus: `HEAD /api/v1/uploads/{id}`, where the upload is.
    UploadStatus(String),
    /// tus: `PATCH /api/v1/uploads/{id}`, a piece.
    AppendUpload(String),
    /// tus termination: `DELETE /api/v1/uploads/{id}`.
    EndUpload(String),
    /// The course's `POST /login` (Basic auth → the bare token as text).
    CourseLogin,
    /// The course's `POST /upload` (multipart, `file` field).
    CourseUpload,
    /// The course's `GET /download?fid=`.
    CourseDownload,
    /// The web page at `/` (and `/index.html`).
    WebPage,
    /// The page's stylesheet or script.
    WebAsset(crate::web::Asset),
    /// The path exists, the method does not; `Allow` lists what does.
    MethodNotAllowed(&'static str),
    NotFound,
}

pub fn route(method: &str, path: &str) -> Route {
    let is = |m: &str| method.eq_ignore_ascii_case(m);
    let get = is("GET") || is("HEAD");
    let allow = |allowed: &'static str, matched: Route, ok: bool| {
        if ok {
            matched
        } else {
            Route::MethodNotAllowed(allowed)
        }
    };
    match path {
        // `/confirm` is where confirmation links land: the page, which confirms only when the
        // person presses its button (mail scanners fetch links; a GET never confirms anything).
        "/" | "/index.html" | "/confirm" => allow("GET", Route::WebPage, get),
        "/app.css" | "/app.js" => match crate::web::Asset::at(path) {
            Some(asset) => allow("GET", Route::WebAsset(asset), get),
            None => Route::NotFound,
        },
        "/healthz" => allow("GET", Route::Health, get),
        "/readyz" => allow("GET", Route::Ready, get),
        "/api/v1/openapi.json" => allow("GET", Route::OpenApi, get),
        "/api/v1/users" => allow("POST", Route::SignUp, is("POST")),
        "/api/v1/users/confirmation" => allow("POST", Route::ConfirmEmail, is("POST")),
        "/api/v1/users/confirmation-email" => allow("POST", Route::ConfirmationEmail, is("POST")),
        "/api/v1/sessions" => allow("POST", Route::LogIn, is("POST")),
        "/api/v1/account" => allow("DELETE", Route::DeleteAccount, is("DELETE")),
        "/api/v1/jobs" => {
            if get {
                Route::ListJobs
            } else if is("POST") {
                Route::Upload
            } else {
                Route::MethodNotAllowed("GET, POST")
            }
        }
        "/api/v1/webhook" => {
            if get {
                Route::GetWebhook
            } else if is("PUT") {
                Route::PutWebhook
            } else if is("DELETE") {
                Route::DeleteWebhook
            } else {
                Route::MethodNotAllowed("GET, PUT, DELETE")
            }
        }
        "/api/v1/uploads" => {
            if is("POST") {
                Route::BeginUpload
            } else if is("OPTIONS") {
                Route::UploadOptions
            } else {
                Route::MethodNotAllowed("POST, OPTIONS")
            }
        }
        "/login" => allow("POST", Route::CourseLogin, is("POST")),
        "/upload" => allow("POST", Route::CourseUpload, is("POST")),
        "/download" => allow("GET", Route::CourseDownload, get),
        _ if path.starts_with("/api/v1/uploads/") => {
            let id = &path["/api/v1/uploads/".len()..];
            if id.is_empty() || id.contains('/') {
                Route::NotFound
            } else if is("HEAD") {
                Route::UploadStatus(id.to_owned())
            } else if is("PATCH") {
                Route::AppendUpload(id.to_owned())
            } else if is("DELETE") {
                Route::EndUpload(id.to_owned())
            } else if is("OPTIONS") {
                Route::UploadOptions
            } else {
                Route::MethodNotAllowed("HEAD, PATCH, DELETE, OPTIONS")
            }
        }
        _ => match path.strip_prefix("/api/v1/jobs/") {
            Some(rest) => match rest.split_once('/') {
                None if !rest.is_empty() => {
                    if get {
                        Route::GetJob(rest.to_owned())
                    } else if is("DELETE") {
                        Route::DeleteJob(rest.to_owned())
                    } else {
                        Route::MethodNotAllowed("GET, DELETE")
                    }
                }
                Some((id, "mp3")) if !id.is_empty() => {
                    allow("GET", Route::GetMp3(id.to_owned()), get)
                }
                _ => Route::NotFound,
            },
            None => Route::NotFound,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_routing_table() {
        let id = "0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d11";
        let cases: &[(&str, &str, Route)] = &[
            ("GET", "/healthz", Route::Health),
            ("GET", "/readyz", Route::Ready),
            ("GET", "/api/v1/openapi.json", Route::OpenApi),
            ("POST", "/api/v1/users", Route::SignUp),
            ("POST", "/api/v1/users/confirmation", Route::ConfirmEmail),
            (
                "POST",
                "/api/v1/users/confirmation-email",
                Route::ConfirmationEmail,
            ),
            (
                "GET",
                "/api/v1/users/confirmation",
                Route::MethodNotAllowed("POST"),
            ),
            ("GET", "/confirm", Route::WebPage),
            ("POST", "/confirm", Route::MethodNotAllowed("GET")),
            ("POST", "/api/v1/sessions", Route::LogIn),
            ("DELETE", "/api/v1/account", Route::DeleteAccount),
            ("GET", "/api/v1/account", Route::MethodNotAllowed("DELETE")),
            ("POST", "/api/v1/account", Route::MethodNotAllowed("DELETE")),
            ("GET", "/api/v1/jobs", Route::ListJobs),
            ("POST", "/api/v1/jobs", Route::Upload),
            (
                "GET",
                &format!("/api/v1/jobs/{id}"),
                Route::GetJob(id.into()),
            ),
            (
                "DELETE",
                &format!("/api/v1/jobs/{id}"),
                Route::DeleteJob(id.into()),
            ),
            (
                "GET",
                &format!("/api/v1/jobs/{id}/mp3"),
                Route::GetMp3(id.into()),
            ),
            (
                "HEAD",
                &format!("/api/v1/jobs/{id}/mp3"),
                Route::GetMp3(id.into()),
            ),
            ("GET", "/api/v1/webhook", Route::GetWebhook),
            ("PUT", "/api/v1/webhook", Route::PutWebhook),
            ("DELETE", "/api/v1/webhook", Route::DeleteWebhook),
            (
                "POST",
                "/api/v1/webhook",
                Route::MethodNotAllowed("GET, PUT, DELETE"),
            ),
            ("GET", "/api/v1/webhook/x", Route::NotFound),
            ("POST", "/api/v1/uploads", Route::BeginUpload),
            ("OPTIONS", "/api/v1/uploads", Route::UploadOptions),
            (
                "GET",
                "/api/v1/uploads",
                Route::MethodNotAllowed("POST, OPTIONS"),
            ),
            (
                "HEAD",
                &format!("/api/v1/uploads/{id}"),
                Route::UploadStatus(id.into()),
            ),
            (
                "PATCH",
                &format!("/api/v1/uploads/{id}"),
                Route::AppendUpload(id.into()),
            ),
            (
                "DELETE",
                &format!("/api/v1/uploads/{id}"),
                Route::EndUpload(id.into()),
            ),
            (
                "OPTIONS",
                &format!("/api/v1/uploads/{id}"),
                Route::UploadOptions,
            ),
            (
                "GET",
                &format!("/api/v1/uploads/{id}"),
                Route::MethodNotAllowed("HEAD, PATCH, DELETE, OPTIONS"),
            ),
            ("PATCH", "/api/v1/uploads/", Route::NotFound),
            ("PATCH", &format!("/api/v1/uploads/{id}/x"), Route::NotFound),
            ("POST", "/login", Route::CourseLogin),
            ("POST", "/upload", Route::CourseUpload),
            ("GET", "/download", Route::CourseDownload),
            ("GET", "/", Route::WebPage),
            ("HEAD", "/", Route::WebPage),
            ("GET", "/index.html", Route::WebPage),
            (
                "GET",
                "/app.css",
                Route::WebAsset(crate::web::Asset::Styles),
            ),
            ("GET", "/app.js", Route::WebAsset(crate::web::Asset::Script)),
            ("POST", "/", Route::MethodNotAllowed("GET")),
            ("GET", "/app.js.map", Route::NotFound),
            // What must not match.
            ("GET", "/api/v1/jobs/", Route::NotFound),
            ("GET", &format!("/api/v1/jobs/{id}/video"), Route::NotFound),
            ("GET", &format!("/api/v1/jobs/{id}/mp3/x"), Route::NotFound),
            ("GET", "/api/v2/jobs", Route::NotFound),
            ("GET", "/internal/v1/jobs", Route::NotFound),
            ("GET", "/login", Route::MethodNotAllowed("POST")),
            ("PUT", "/api/v1/jobs", Route::MethodNotAllowed("GET, POST")),
            (
                "POST",
                &format!("/api/v1/jobs/{id}"),
                Route::MethodNotAllowed("GET, DELETE"),
            ),
            (
                "DELETE",
                &format!("/api/v1/jobs/{id}/mp3"),
                Route::MethodNotAllowed("GET"),
            ),
        ];
        for (method, path, want) in cases {
            assert_eq!(&route(method, path), want, "{method} {path}");
        }
    }
}
