//! The HTTP server (tiny_http) on a free loopback port, on a thread of its own, stopped on drop.

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use serde_json::Value;

use crate::sse::{self, Answer};
use crate::{Error, Request, Script};

/// A running scripted model server.
pub struct ModelServer {
    url: String,
    server: Arc<tiny_http::Server>,
    requests: Arc<Mutex<Vec<Request>>>,
    thread: Option<JoinHandle<()>>,
}

impl ModelServer {
    /// Starts the server on a free port of 127.0.0.1, answering from `script`.
    pub fn start(script: Script) -> Result<ModelServer, Error> {
        let server = Arc::new(
            tiny_http::Server::http("127.0.0.1:0").map_err(|e| Error::Listen(e.to_string()))?,
        );
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or_else(|| Error::Listen("no IP address bound".into()))?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let thread = std::thread::Builder::new()
            .name("scripted-model".into())
            .spawn({
                let server = Arc::clone(&server);
                let requests = Arc::clone(&requests);
                move || serve(&server, &script, &requests)
            })?;
        Ok(ModelServer {
            url: format!("http://127.0.0.1:{port}"),
            server,
            requests,
            thread: Some(thread),
        })
    }

    /// The base URL, for `ANTHROPIC_BASE_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The `/v1/messages` requests whose first user message contains `marker`.
    pub fn conversation(&self, marker: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == "/v1/messages" && r.first_user_text().contains(marker))
            .collect()
    }
}

impl std::fmt::Debug for ModelServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelServer")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("the scripted model's thread panicked");
        }
    }
}

/// Answers requests until the server is unblocked, each on a thread of its own (a delayed
/// reply holds up no other conversation).
fn serve(server: &tiny_http::Server, script: &Script, requests: &Mutex<Vec<Request>>) {
    let next_id = AtomicU64::new(1);
    std::thread::scope(|scope| {
        for incoming in server.incoming_requests() {
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = std::thread::Builder::new()
                .name("scripted-model-request".into())
                .spawn_scoped(scope, move || answer(incoming, script, requests, id))
            {
                tracing::warn!("cannot start a thread for a request: {e}");
            }
        }
    });
}

/// Logs one request and answers it.
fn answer(
    mut incoming: tiny_http::Request,
    script: &Script,
    requests: &Mutex<Vec<Request>>,
    id: u64,
) {
    let mut text = String::new();
    let body = match incoming.as_reader().read_to_string(&mut text) {
        Ok(_) => serde_json::from_str(&text).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    let path = incoming
        .url()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    let request = Request { path, body };
    requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(request.clone());
    let answer = match (incoming.method(), request.path.as_str()) {
        (tiny_http::Method::Post, "/v1/messages") => {
            let reply = script.reply(&request);
            sse::answer(&request, &reply, id)
        }
        (tiny_http::Method::Post, "/v1/messages/count_tokens") => sse::count_tokens(&request),
        _ => sse::error(404, "not_found_error", "not served by the scripted model"),
    };
    if let Err(e) = incoming.respond(response(answer)) {
        tracing::debug!("the client went away: {e}");
    }
}

fn response(answer: Answer) -> tiny_http::Response<Cursor<Vec<u8>>> {
    let mut response =
        tiny_http::Response::from_data(answer.body.into_bytes()).with_status_code(answer.status);
    if let Ok(header) = tiny_http::Header::from_bytes("Content-Type", answer.content_type) {
        response.add_header(header);
    }
    if let Ok(header) = tiny_http::Header::from_bytes("request-id", "req_scripted") {
        response.add_header(header);
    }
    response
}
