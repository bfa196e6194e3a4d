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
    paths: Paths,
    schemas: Vec<(String, RefOr<Schema>)>,
    undocumented: Vec<Undocumented>,
}

impl RouteTable {
    /// Serves `handler` at the method(s) and path of its `#[utoipa::path]` (`operation` is the
    /// `__path_<handler>` type that attribute generates) and adds the operation to the document.
    pub fn api<P, F, Args>(&mut self, _operation: P, handler: F) -> &mut Self
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
            self.push(path.clone(), route);
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

    /// Every served path pattern, documented or not, in registration order.
    pub fn served_paths(&self) -> Vec<&str> {
        self.resources.iter().map(|(path, _)| path.as_str()).collect()
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
