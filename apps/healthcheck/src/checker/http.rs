//! The HTTP(S) probe of a [`Checker`]: from a spec and its judged addresses
//! to a [`CheckOutcome`], through the shared [`Clients`](super::clients),
//! with a pin (HTTPS by name) and a keep-alive admission per request.

use reqwest::{
    Client, Method,
    header::{HOST, HeaderMap, HeaderName, HeaderValue, USER_AGENT},
};
use tokio::time::{Instant, timeout_at};

use super::{
    CheckOutcome, Checker, MAX_BODY_BYTES, Purpose,
    clients::Flavour,
    failure::{Failure, closed_before_answer, short},
    keep_alive::{Admitted, PoolKey},
    target::{Route, Target, host_header, targets},
};
use crate::spec::{HttpVersion, Kind, OriginSpec, header_mismatch};

/// One attempt of an HTTP(S) check at one [`Target`].
enum Attempt {
    /// The check is over (an answer, or a failure after connecting).
    Done(CheckOutcome),
    /// Could not connect to the target: the next one may be tried.
    Unreachable(Failure),
}

impl Checker {
    /// An HTTP(S) check: resolve, judge, then try the targets in order
    /// until one can be connected to.
    pub(super) async fn check_http(
        &self,
        spec: &OriginSpec,
        purpose: Purpose,
        started: Instant,
        deadline: Instant,
    ) -> CheckOutcome {
        let host = match host_header(spec) {
            Ok(host) => host,
            Err(failure) => return CheckOutcome::failed(None, None, failure),
        };
        let addrs = match self.resolve(spec, deadline).await {
            Ok(addrs) => addrs,
            Err(failure) => return CheckOutcome::failed(None, None, failure),
        };
        let targets = match targets(spec, &host, &addrs) {
            Ok(targets) => targets,
            Err(failure) => return CheckOutcome::failed(None, None, failure),
        };
        let mut last = None;
        for target in targets {
            match self.attempt(spec, purpose, target, started, deadline).await {
                Attempt::Done(outcome) => return outcome,
                Attempt::Unreachable(failure) => last = Some(failure),
            }
        }
        let failure = last.unwrap_or_else(|| Failure::Connect("no address".into()));
        CheckOutcome::failed(None, None, failure)
    }

    /// One HTTP(S) request to `target`.
    async fn attempt(
        &self,
        spec: &OriginSpec,
        purpose: Purpose,
        target: Target,
        started: Instant,
        deadline: Instant,
    ) -> Attempt {
        let done = |failure| Attempt::Done(CheckOutcome::failed(None, None, failure));
        let https = spec.kind == Kind::Https;
        // Plain HTTP uses one pool whatever `tls_verify` says.
        let tls_verify = spec.tls_verify || !https;
        let http2 = https && spec.http_version == HttpVersion::Http2;
        let files = if https {
            match self.inner.tls_dir.stamp(spec) {
                Ok(files) => files,
                Err(e) => return done(Failure::Tls(short(&e.to_string()))),
            }
        } else {
            None
        };
        let matcher = match self.body_matcher(spec) {
            Ok(matcher) => matcher,
            Err(failure) => return done(failure),
        };
        let key = PoolKey {
            https,
            endpoint: target.endpoint(),
            tls_verify,
            http2,
            files: files.clone(),
        };
        // Held until the connection went back to the pool (or was closed):
        // declared before the response, so dropped after it.
        let admitted = Admitted::acquire(&self.inner.admission, key, Instant::now());
        let flavour = Flavour {
            pooled: admitted.is_some(),
            tls_verify,
            http2,
        };
        let client = match &files {
            None => self.inner.clients.get(flavour).clone(),
            Some(stamp) => {
                let material = || match self.inner.tls_dir.load(spec) {
                    Ok(Some(material)) => Ok(material),
                    Ok(None) => Err("the TLS files are gone".to_owned()),
                    Err(e) => Err(e.to_string()),
                };
                match self.inner.clients.with_files(stamp, flavour, material) {
                    Ok(client) => client,
                    Err(e) => return done(Failure::Tls(short(&e))),
                }
            }
        };
        let request = match self.request(&client, spec, purpose, &target) {
            Ok(request) => request,
            Err(failure) => return done(failure),
        };
        // The name answers the judged addresses while the request may
        // connect: from here until it has an answer or failed.
        let pin = match &target.route {
            Route::Addr(_) => None,
            Route::Name { name, addrs, .. } => Some(self.inner.pins.pin(name, addrs)),
        };
        // An idle pooled connection that the origin has just closed fails a
        // request sent on it before any answer; an idempotent request is
        // then sent once more (on a new connection), as browsers and Go's
        // net/http do, so the origin's keep-alive timeout is not a failure.
        let retry = request
            .method()
            .is_idempotent()
            .then(|| request.try_clone())
            .flatten();
        let mut sent = timeout_at(deadline, client.execute(request)).await;
        if let (Ok(Err(e)), Some(retry)) = (&sent, retry)
            && closed_before_answer(e)
        {
            sent = timeout_at(deadline, client.execute(retry)).await;
        }
        drop(pin);
        let mut response = match sent {
            Err(_elapsed) => return done(Failure::Timeout),
            Ok(Err(e)) => {
                let failure = Failure::classify(&e, false);
                return match failure {
                    Failure::Refused | Failure::Connect(_) if e.is_connect() => {
                        Attempt::Unreachable(failure)
                    }
                    _ => done(failure),
                };
            }
            Ok(Ok(response)) => response,
        };
        let latency = started.elapsed();
        let code = response.status().as_u16();
        let expected = spec.status_ranges().iter().any(|r| r.contains(code));
        let headers = header_mismatch(&spec.expect_headers, |name| {
            response
                .headers()
                .get_all(name)
                .iter()
                .map(HeaderValue::as_bytes)
        });
        // Read the body even after an unexpected answer, so that the
        // connection goes back to the pool; keep it if it is to be matched.
        let mut body = Vec::new();
        let keep = matcher.is_some() && expected && headers.is_none();
        let drained = timeout_at(deadline, async {
            let mut read = 0;
            while read < MAX_BODY_BYTES {
                match response.chunk().await? {
                    Some(chunk) => {
                        if keep {
                            let room = MAX_BODY_BYTES - body.len();
                            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                        }
                        read += chunk.len();
                    }
                    None => break,
                }
            }
            Ok::<(), reqwest::Error>(())
        })
        .await;
        let failure = if !expected {
            Some(Failure::Status(code))
        } else if let Some(why) = headers {
            Some(Failure::Header(short(&why)))
        } else {
            match drained {
                Err(_elapsed) => Some(Failure::Timeout),
                Ok(Err(e)) => Some(Failure::classify(&e, false)),
                Ok(Ok(())) => matcher
                    .and_then(|m| m.mismatch(&body))
                    .map(|why| Failure::Body(short(&why))),
            }
        };
        Attempt::Done(CheckOutcome {
            ok: failure.is_none(),
            latency: Some(latency),
            reason: failure.map(|f| f.to_string()),
            status_code: Some(code),
        })
    }

    /// The request of an HTTP(S) spec: its method, URL, headers, then
    /// `User-Agent` and `Host` (which override the spec's headers).
    fn request(
        &self,
        client: &Client,
        spec: &OriginSpec,
        purpose: Purpose,
        target: &Target,
    ) -> Result<reqwest::Request, Failure> {
        let method = Method::from_bytes(spec.method.as_bytes())
            .map_err(|_| Failure::Io(short(&format!("invalid method {:?}", spec.method))))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &spec.headers {
            let invalid = || Failure::Io(short(&format!("invalid header {name:?}")));
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
            let value = HeaderValue::from_str(value).map_err(|_| invalid())?;
            headers.insert(name, value);
        }
        let user_agent = match purpose {
            Purpose::Own => &self.inner.user_agent,
            Purpose::Confirm => &self.inner.confirm_user_agent,
        };
        headers.insert(USER_AGENT, user_agent.clone());
        let host = HeaderValue::from_str(&target.host)
            .map_err(|_| Failure::Io(short(&format!("invalid host {:?}", target.host))))?;
        headers.insert(HOST, host);
        let mut request = client.request(method, target.url.clone()).headers(headers);
        if let Some(body) = &spec.request_body {
            request = request.body(body.clone());
        }
        request.build().map_err(|e| Failure::classify(&e, false))
    }
}

// Needs a stand-in origin (`fake_origin`, feature `demo`).
#[cfg(all(test, feature = "demo"))]
mod tests {
    use crate::{
        checker::{Checker, CheckerConfig},
        fake_origin::{Behaviour, FakeOrigin},
    };

    /// The shared clients resolve a name only while a check pins it: a
    /// request to `localhost` that no check pinned fails to connect, and
    /// reaches no origin.
    #[tokio::test]
    async fn the_clients_resolve_no_name_that_is_not_pinned() {
        let origin = FakeOrigin::start_tls(Behaviour::Healthy)
            .await
            .expect("origin");
        let checker = Checker::new(CheckerConfig::default()).expect("checker");
        let url = format!("https://localhost:{}/", origin.addr().port());
        for (pooled, tls_verify) in [(true, true), (true, false), (false, true), (false, false)] {
            let client = checker.inner.clients.get(super::Flavour {
                pooled,
                tls_verify,
                http2: false,
            });
            let err = client.get(&url).send().await.expect_err("not pinned");
            assert!(err.is_connect(), "{err:?}");
            let failure = crate::checker::Failure::classify(&err, false).to_string();
            assert_eq!(
                failure, "connect: localhost is not pinned by a check in flight",
                "{pooled} {tls_verify}"
            );
        }
        // Pinned, the same request goes through (by the unverifying client:
        // the origin's certificate is self-signed).
        let pin = checker.inner.pins.pin("localhost", &[origin.addr()]);
        let response = checker
            .inner
            .clients
            .get(super::Flavour {
                pooled: false,
                tls_verify: false,
                http2: false,
            })
            .get(&url)
            .send()
            .await
            .expect("pinned");
        assert_eq!(response.status().as_u16(), 200);
        drop(pin);
        assert_eq!(origin.connections(), 1);
        origin.shutdown().await;
    }
}
