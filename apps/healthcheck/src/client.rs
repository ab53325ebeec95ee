//! [`ApiClient`]: the agent's HTTP API as the command line uses it
//! (`healthcheck status`, `members`, `origins get|put|rm`): a base URL, an
//! optional bearer token and an optional CA to trust for an https API. An
//! answer that is not a success becomes an error carrying the API's own
//! JSON error message and field.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Why a call to the API failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The CA file could not be read or is not PEM.
    #[error("cannot use the CA file {path}")]
    Ca {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The request could not be sent or its answer read.
    #[error("{method} {url}")]
    Http {
        /// The method.
        method: Method,
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The API answered with an error status.
    #[error("{method} {url}: {status}: {message}{}", field.as_ref().map(|f| format!(" (field {f})")).unwrap_or_default())]
    Refused {
        /// The method.
        method: Method,
        /// The URL.
        url: String,
        /// The status.
        status: StatusCode,
        /// The API's error message (or the body, if it was not the JSON
        /// error form).
        message: String,
        /// The field at fault, when the API names one.
        field: Option<String>,
    },
}

/// A client of one agent's API.
pub struct ApiClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl ApiClient {
    /// A client of the API at `base` (e.g. `http://127.0.0.1:8080`), sending
    /// `token` if given and trusting `ca` (a PEM file) if given.
    ///
    /// # Errors
    /// [`ClientError::Ca`] if `ca` cannot be used.
    pub fn new(base: &str, token: Option<&str>, ca: Option<&Path>) -> Result<Self, ClientError> {
        let mut builder = reqwest::Client::builder();
        if let Some(path) = ca {
            let ca_error = |source: Box<dyn std::error::Error + Send + Sync>| ClientError::Ca {
                path: path.to_owned(),
                source,
            };
            let pem = std::fs::read(path).map_err(|e| ca_error(Box::new(e)))?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| ca_error(Box::new(e)))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| ClientError::Ca {
            path: ca.map(Path::to_owned).unwrap_or_default(),
            source: Box::new(e),
        })?;
        Ok(ApiClient {
            base: base.trim_end_matches('/').to_owned(),
            token: token.map(str::to_owned),
            http,
        })
    }

    /// `GET path`, decoded as JSON.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        let (_, body) = self.call(Method::GET, path, None).await?;
        Ok(body)
    }

    /// `PUT path` with a JSON `body`; returns the status (201 created, 200
    /// replaced) and the answer.
    ///
    /// # Errors
    /// [`ClientError`]: a refused spec is [`ClientError::Refused`] naming the
    /// field.
    pub async fn put(&self, path: &str, body: &Value) -> Result<(StatusCode, Value), ClientError> {
        self.call(Method::PUT, path, Some(body)).await
    }

    /// `DELETE path`.
    ///
    /// # Errors
    /// [`ClientError`]: an unknown origin is a 404 [`ClientError::Refused`].
    pub async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, path, None).await.map(|_| ())
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), ClientError> {
        let url = format!("{}{path}", self.base);
        let http_error = |source| ClientError::Http {
            method: method.clone(),
            url: url.clone(),
            source,
        };
        let mut request = self.http.request(method.clone(), &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let answer = request.send().await.map_err(http_error)?;
        let status = answer.status();
        let text = answer.text().await.map_err(http_error)?;
        let json: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if !status.is_success() {
            let message = json["error"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| json.as_str().unwrap_or("").to_owned());
            return Err(ClientError::Refused {
                method,
                url,
                status,
                message,
                field: json["field"].as_str().map(str::to_owned),
            });
        }
        Ok((status, json))
    }
}

/// One event of `GET /v1/events`.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    /// Its id (resume from it with `Last-Event-ID`).
    pub id: String,
    /// Its type: `health`, `registry`, `resync` or `index`.
    pub kind: String,
    /// Its JSON.
    pub data: Value,
}

/// Reads Server-Sent Events out of a byte stream, line by line.
#[derive(Default)]
pub struct SseParser {
    line: Vec<u8>,
    id: String,
    kind: String,
    data: String,
}

impl SseParser {
    /// Feeds `bytes`; returns the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        for &b in bytes {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            let line = String::from_utf8_lossy(&self.line)
                .trim_end_matches('\r')
                .to_owned();
            self.line.clear();
            if line.is_empty() {
                if !self.kind.is_empty() || !self.data.is_empty() {
                    out.push(StreamEvent {
                        id: self.id.clone(),
                        kind: std::mem::take(&mut self.kind),
                        data: serde_json::from_str(&self.data).unwrap_or(Value::Null),
                    });
                }
                self.data.clear();
            } else if let Some(v) = line.strip_prefix("id:") {
                self.id = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("event:") {
                self.kind = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                self.data.push_str(v.trim_start());
            }
        }
        out
    }
}

impl ApiClient {
    /// Follows `GET /v1/events` (from `last_id`, if given), calling
    /// `on_event` for each event; returns when the stream ends, with the id
    /// of the last event seen (to resume from).
    ///
    /// # Errors
    /// [`ClientError`] if the stream cannot be opened or breaks.
    pub async fn events(
        &self,
        last_id: Option<&str>,
        mut on_event: impl FnMut(&StreamEvent),
    ) -> Result<Option<String>, ClientError> {
        let url = format!("{}/v1/events", self.base);
        let http_error = |source| ClientError::Http {
            method: Method::GET,
            url: url.clone(),
            source,
        };
        let mut request = self.http.get(&url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(id) = last_id {
            request = request.header("last-event-id", id);
        }
        let mut answer = request.send().await.map_err(http_error)?;
        if !answer.status().is_success() {
            let status = answer.status();
            let text = answer.text().await.unwrap_or_default();
            let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            return Err(ClientError::Refused {
                method: Method::GET,
                url: url.clone(),
                status,
                message: json["error"].as_str().unwrap_or(&text).to_owned(),
                field: json["field"].as_str().map(str::to_owned),
            });
        }
        let mut parser = SseParser::default();
        let mut last = last_id.map(str::to_owned);
        while let Some(chunk) = answer.chunk().await.map_err(http_error)? {
            for event in parser.feed(&chunk) {
                if !event.id.is_empty() {
                    last = Some(event.id.clone());
                }
                on_event(&event);
            }
        }
        Ok(last)
    }
}

/// The path of origin `id` in the API (the id percent-encoded).
pub fn origin_path(id: &str) -> String {
    let mut out = String::from("/v1/origins/");
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_sent_events_are_parsed_across_chunk_boundaries() {
        let text = b": heartbeat\n\nid: 7-1\nevent: registry\ndata: {\"origin\":\"a\"}\n\nid: 7-2\r\nevent: resync\r\ndata: {}\r\n\r\n";
        for split in 0..text.len() {
            let mut p = SseParser::default();
            let mut got = p.feed(&text[..split]);
            got.extend(p.feed(&text[split..]));
            assert_eq!(got.len(), 2, "split at {split}: {got:?}");
            assert_eq!(
                (got[0].id.as_str(), got[0].kind.as_str()),
                ("7-1", "registry")
            );
            assert_eq!(got[0].data["origin"], "a");
            assert_eq!(
                (got[1].id.as_str(), got[1].kind.as_str()),
                ("7-2", "resync")
            );
        }
    }

    #[test]
    fn an_origin_id_is_percent_encoded_in_its_path() {
        assert_eq!(origin_path("web-1"), "/v1/origins/web-1");
        assert_eq!(origin_path("a b/c"), "/v1/origins/a%20b%2Fc");
    }

    #[test]
    fn a_refusal_reads_as_the_api_said_it() {
        let e = ClientError::Refused {
            method: Method::PUT,
            url: "http://h/v1/origins/x".into(),
            status: StatusCode::BAD_REQUEST,
            message: "must be host:port".into(),
            field: Some("address".into()),
        };
        assert_eq!(
            e.to_string(),
            "PUT http://h/v1/origins/x: 400 Bad Request: must be host:port (field address)"
        );
    }
}
