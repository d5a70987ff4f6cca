//! One HTTP client for the process: hyper's HTTP/1.1 client over [`crate::tls`]'s rustls, used by every
//! AWS SDK client ([`sdk_http_client`]) and by the custom-resource response PUT ([`Pool`]).
//!
//! Why not the SDK's own client (`aws-smithy-http-client`): it always links HTTP/2 (`h2`, about 300 KB
//! of every bootstrap) and a second instance of the hyper client next to the PUT's, and none of the
//! AWS APIs these functions call needs HTTP/2. The adapter keeps what the SDK's client does that
//! matters here:
//! - each SDK client's connect and read timeouts (`HttpConnectorSettings`);
//! - connections pooled and reused, one pool per connect timeout, with idle connections expired;
//! - errors classified as the SDK's retry strategy expects: a failed connect, a closed or reset
//!   connection and an I/O error are transient (retried), a timeout is a timeout, a request hyper
//!   cannot send is the caller's.
//!
//! What it leaves out: HTTP proxies (`HTTPS_PROXY`; Lambda reaches AWS directly, or through VPC
//! endpoints) and HTTP/2.
//!
//! Nothing is built when a client is created: the first request builds the connector and reads the
//! trust store, so a cold start reads no certificate.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;

/// A pooled HTTPS (and, for local endpoints, HTTP) client. Cheap to clone: clones share the pool.
pub type Client =
    hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<TcpConnector>, SdkBody>;

/// Clients by connect timeout, each built on its first use. Build one `Pool` per purpose per cold
/// start; the trust store behind them is read once per process ([`crate::tls`]).
#[derive(Debug, Default)]
pub struct Pool(Mutex<HashMap<Option<Duration>, Client>>);

impl Pool {
    /// The client whose connections time out after `connect_timeout` (none: the OS's).
    pub fn client(&self, connect_timeout: Option<Duration>) -> Result<Client, String> {
        let mut clients = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.get(&connect_timeout) {
            return Ok(client.clone());
        }
        let tls = crate::tls::client_config().map_err(|e| format!("no TLS configuration: {e}"))?;
        let mut tcp = TcpConnector::new();
        tcp.set_connect_timeout(connect_timeout);
        tcp.set_nodelay(true);
        tcp.enforce_http(false);
        // Plain http only where an endpoint says so: the local emulator in tests (AWS_ENDPOINT_URL), a
        // loopback ResponseURL (which the custom-resource framework admits in local tests only).
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .build(connector);
        clients.insert(connect_timeout, client.clone());
        Ok(client)
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }
}

/// The HTTP client every SDK client of this process uses (set on the `SdkConfig` by
/// [`crate::aws::config`]).
pub fn sdk_http_client() -> SharedHttpClient {
    SharedHttpClient::new(Sdk::default())
}

#[derive(Debug, Default, Clone)]
struct Sdk(Arc<Pool>);

impl HttpClient for Sdk {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Connector {
            pool: self.0.clone(),
            connect_timeout: settings.connect_timeout(),
            read_timeout: settings.read_timeout(),
        })
    }
    // `validate_base_client_config` stays the default no-op: nothing is built when a client is.
}

#[derive(Debug)]
struct Connector {
    pool: Arc<Pool>,
    connect_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let client = match self.pool.client(self.connect_timeout) {
            Ok(client) => client,
            Err(e) => {
                return HttpConnectorFuture::ready(Err(ConnectorError::other(e.into(), None)));
            }
        };
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let response = client.request(request);
            // The read timeout, as the SDK means it: from sending the request to the response's head.
            let response = match read_timeout {
                Some(limit) => tokio::time::timeout(limit, response).await.map_err(|_| {
                    ConnectorError::timeout(
                        format!("no response within the read timeout ({limit:?})").into(),
                    )
                })?,
                None => response.await,
            }
            .map_err(classify)?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// What the SDK's retry strategy should make of a failed request.
fn classify(err: hyper_util::client::legacy::Error) -> ConnectorError {
    let hyper = source::<hyper::Error>(&err);
    let io = source::<std::io::Error>(&err).is_some();
    if hyper.is_some_and(hyper::Error::is_timeout) {
        ConnectorError::timeout(err.into())
    } else if hyper.is_some_and(hyper::Error::is_user) {
        ConnectorError::user(err.into())
    } else if err.is_connect() || io || hyper.is_some_and(|e| e.is_closed() || e.is_canceled()) {
        ConnectorError::io(err.into())
    } else if hyper.is_some_and(hyper::Error::is_incomplete_message) {
        // The connection closed before the whole response arrived (S3 and others do this): retryable.
        ConnectorError::other(err.into(), Some(ErrorKind::TransientError))
    } else {
        ConnectorError::other(err.into(), None)
    }
}

/// A listener on a free loopback port, and the `http://` URL of `path` on it (tests).
#[cfg(test)]
pub(crate) async fn local_server(path: &str) -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}{path}", listener.local_addr().expect("addr"));
    (listener, url)
}

/// The first error of type `E` in `err`'s chain.
fn source<'a, E: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    std::iter::successors(Some(err), |&e| e.source()).find_map(|e| e.downcast_ref::<E>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn connector(read_timeout: Option<Duration>) -> Connector {
        Connector {
            pool: Arc::default(),
            connect_timeout: Some(Duration::from_secs(1)),
            read_timeout,
        }
    }

    fn get(url: &str) -> HttpRequest {
        let request = http::Request::get(url)
            .body(SdkBody::empty())
            .expect("a valid request");
        HttpRequest::try_from(request).expect("an http 1.x request")
    }

    #[test]
    fn creating_sdk_clients_builds_no_connector_and_reads_no_certificate() {
        let sdk = Sdk::default();
        let config = aws_sdk_lambda::Config::builder()
            .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
            .region(aws_sdk_lambda::config::Region::new("us-east-1"))
            .http_client(SharedHttpClient::new(sdk.clone()))
            .build();
        for _ in 0..3 {
            let _client = aws_sdk_lambda::Client::from_conf(config.clone());
        }
        assert!(sdk.0.is_empty(), "a client was built before any request");
    }

    #[tokio::test]
    async fn answers_come_back_and_connections_are_reused() {
        let (listener, url) = local_server("/ping").await;
        let server = tokio::spawn(async move {
            // One connection only: a second request must arrive on the same one.
            let (mut socket, _) = listener.accept().await.expect("accept");
            for _ in 0..2 {
                let mut buf = [0u8; 1024];
                let n = socket.read(&mut buf).await.expect("read");
                assert!(buf[..n].starts_with(b"GET /ping HTTP/1.1"));
                socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\npong")
                    .await
                    .expect("write");
            }
        });
        let connector = connector(Some(Duration::from_secs(5)));
        for _ in 0..2 {
            let response = connector.call(get(&url)).await.expect("an answer");
            assert_eq!(response.status().as_u16(), 200);
            assert_eq!(response.body().bytes(), None, "streamed, not buffered");
            let body = response.into_body().collect().await.expect("body");
            assert_eq!(&body.to_bytes()[..], b"pong");
        }
        server.await.expect("server");
    }

    #[tokio::test]
    async fn a_silent_server_is_a_timeout_and_a_refused_connect_is_transient_io() {
        let (listener, url) = local_server("/").await;
        let _hold = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.expect("accept");
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(socket);
        });
        let err = connector(Some(Duration::from_millis(200)))
            .call(get(&url))
            .await
            .expect_err("no answer");
        assert!(err.is_timeout(), "{err:?}");

        // A port nobody listens on: the connect fails, and the SDK retries it.
        let (closed, url) = local_server("/").await;
        drop(closed);
        let err = connector(None).call(get(&url)).await.expect_err("refused");
        assert!(err.is_io(), "{err:?}");
    }

    #[tokio::test]
    async fn a_connection_closed_mid_answer_is_retryable() {
        let (listener, url) = local_server("/").await;
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            // Closed without a word: hyper reports an incomplete message.
        });
        let err = connector(None).call(get(&url)).await.expect_err("closed");
        assert!(
            err.is_io() || err.as_other() == Some(ErrorKind::TransientError),
            "{err:?}"
        );
    }
}
