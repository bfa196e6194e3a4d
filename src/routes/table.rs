//! The route table: one call serves a handler and documents it, so the OpenAPI document and the
//! routes actually served cannot drift apart.
//!
//! A REST handler carries `#[utoipa::path(method, path = "...", ...)]`; its module adds it with
//! `table.api(__path_handler, handler)`, which takes the method and path from that attribute.
//! Routes kept out of the document on purpose (pages, the WebSocket upgrade) go through
//! `table.undocumented(path, why, route)`, so the list of exceptions is explicit too.
use actix_web::{FromRequest, Handler, Responder, Route, http::Method, web};
use utoipa::openapi::{
    RefOr,
    path::{HttpMethod, Paths},
    schema::Schema,
};

/// A route served but deliberately left out of the OpenAPI document.
#[derive(Debug, Clone)]
pub struct Undocumented {
    /// The actix path pattern, e.g. `/static/{path:.*}`.
    pub path: &'static str,
    /// Why it is not in the document.
    pub why: &'static str,
}

/// Every route of the App, in registration order, with the document of the REST ones.
#[derive(Default)]
pub struct RouteTable {
    /// Path patterns in first-registration order, each with its routes (one per method).
    resources: Vec<(String, Vec<Route>)>,
    /// Actix patterns whose segments are constrained (`{id:\\d+}`), with the documented path.
    constrained: Vec<(String, String)>,
    paths: Paths,
    schemas: Vec<(String, RefOr<Schema>)>,
    undocumented: Vec<Undocumented>,
}

impl RouteTable {
    /// Serves `handler` at the method(s) and path of its `#[utoipa::path]` (`operation` is the
    /// `__path_<handler>` type that attribute generates) and adds the operation to the document.
    pub fn api<P, F, Args>(&mut self, operation: P, handler: F) -> &mut Self
    where
        P: utoipa::Path + utoipa::__dev::SchemaReferences + utoipa::__dev::Tags<'static>,
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let path = P::path();
        self.serve_and_document(operation, handler, path)
    }

    /// Like [`api`](Self::api), but served at `pattern`: the documented path with some segments
    /// constrained by a regex (`/api/things/{id:\\d+}/`), so that named paths beside it stay
    /// theirs. Panics (at startup) if `pattern` is not the documented path once the regexes are
    /// taken out.
    pub fn api_matching<P, F, Args>(&mut self, operation: P, handler: F, pattern: &str) -> &mut Self
    where
        P: utoipa::Path + utoipa::__dev::SchemaReferences + utoipa::__dev::Tags<'static>,
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let documented = P::path();
        assert_eq!(
            without_regexes(pattern),
            documented,
            "the route pattern must be the documented path with constrained segments"
        );
        if !self.constrained.iter().any(|(p, _)| p == pattern) {
            self.constrained.push((pattern.to_owned(), documented));
        }
        self.serve_and_document(operation, handler, pattern.to_owned())
    }

    fn serve_and_document<P, F, Args>(&mut self, _operation: P, handler: F, pattern: String) -> &mut Self
    where
        P: utoipa::Path + utoipa::__dev::SchemaReferences + utoipa::__dev::Tags<'static>,
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let path = P::path();
        let methods = P::methods();
        for method in &methods {
            let route = web::route().method(actix_method(method)).to(handler.clone());
            self.push(pattern.clone(), route);
        }
        let mut operation = P::operation();
        // `tag = "..."` is kept apart from the operation by the attribute.
        let tags = P::tags();
        if !tags.is_empty() {
            operation.tags = Some(tags.into_iter().map(str::to_owned).collect());
        }
        self.paths.add_path_operation(&path, methods, operation);
        P::schemas(&mut self.schemas);
        self
    }

    /// Serves `route` at `path` without documenting it; `why` says why (and is checked by the
    /// route test, which knows every exception by name).
    pub fn undocumented(&mut self, path: &'static str, why: &'static str, route: Route) -> &mut Self {
        self.push(path.to_owned(), route);
        self.undocumented.push(Undocumented { path, why });
        self
    }

    fn push(&mut self, path: String, route: Route) {
        match self.resources.iter_mut().find(|(p, _)| *p == path) {
            Some((_, routes)) => routes.push(route),
            None => self.resources.push((path, vec![route])),
        }
    }

    /// The documented operations: paths with their methods and schemas.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The schemas the documented operations refer to.
    pub fn schemas(&self) -> &[(String, RefOr<Schema>)] {
        &self.schemas
    }

    /// The routes deliberately left out of the document.
    pub fn undocumented_routes(&self) -> &[Undocumented] {
        &self.undocumented
    }

    /// Every served path pattern, documented or not, in registration order; a constrained one
    /// (see [`api_matching`](Self::api_matching)) as its documented path.
    pub fn served_paths(&self) -> Vec<&str> {
        self.resources
            .iter()
            .map(|(pattern, _)| {
                self.constrained
                    .iter()
                    .find(|(p, _)| p == pattern)
                    .map_or(pattern.as_str(), |(_, documented)| documented.as_str())
            })
            .collect()
    }

    /// Registers every route: one resource per path, so a path asked with a method it does not
    /// serve answers 405 (a resource per method would fall through to the 404 fallback).
    pub fn register(self, cfg: &mut web::ServiceConfig) {
        for (path, routes) in self.resources {
            let resource = routes
                .into_iter()
                .fold(web::resource(path), |resource, route| resource.route(route));
            cfg.service(resource);
        }
    }
}

/// `pattern` with each `{name:regex}` segment written `{name}`, as OpenAPI spells it.
fn without_regexes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else { break };
        let segment = &rest[open + 1..open + close];
        out.push('{');
        out.push_str(segment.split(':').next().unwrap_or(segment));
        out.push('}');
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

fn actix_method(method: &HttpMethod) -> Method {
    match method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Options => Method::OPTIONS,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Trace => Method::TRACE,
    }
}

#[cfg(test)]
mod tests {
    use super::without_regexes;

    #[test]
    fn a_constrained_pattern_is_documented_without_its_regexes() {
        assert_eq!(
            without_regexes("/api/notifications/{id:\\d+}/"),
            "/api/notifications/{id}/"
        );
        assert_eq!(without_regexes("/a/{x}/b/{y:[a-z]+}/"), "/a/{x}/b/{y}/");
        assert_eq!(without_regexes("/healthz"), "/healthz");
    }
}
