//! [`HttpConfig`]: how each worker's hyper-util server treats its connections.

use std::time::Duration;

use hyper_util::rt::TokioExecutor;
use hyper_util::rt::TokioTimer;
use hyper_util::server::conn::auto;

/// The HTTP settings of every worker: timeouts and limits for HTTP/1.1 and HTTP/2.
///
/// The defaults suit a server facing the internet: a client has 30 s to send a request's
/// headers (a half-open or idle-before-headers connection is closed, as Node's
/// `headersTimeout` does), a connection with no request for 60 s is closed, HTTP/1.1
/// keep-alive is on, an HTTP/2 connection carries at most 200 concurrent streams and 64 KiB of
/// headers per request, and HTTP/2 pings are off.
///
/// ```
/// use std::time::Duration;
/// use clustered_tower::HttpConfig;
///
/// let config = HttpConfig::default()
///     .header_read_timeout(Some(Duration::from_secs(10)))
///     .http2_max_concurrent_streams(100);
/// ```
#[derive(Debug, Clone)]
pub struct HttpConfig {
    header_read_timeout: Option<Duration>,
    keep_alive: bool,
    http1_max_buf_size: Option<usize>,
    http2_max_concurrent_streams: u32,
    http2_max_header_list_size: u32,
    http2_keep_alive_interval: Option<Duration>,
    http2_keep_alive_timeout: Duration,
    idle_timeout: Option<Duration>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Some(Duration::from_secs(30)),
            keep_alive: true,
            http1_max_buf_size: None,
            http2_max_concurrent_streams: 200,
            http2_max_header_list_size: 64 * 1024,
            http2_keep_alive_interval: None,
            http2_keep_alive_timeout: Duration::from_secs(20),
            idle_timeout: Some(Duration::from_secs(60)),
        }
    }
}

impl HttpConfig {
    /// How long an HTTP/1 client may stall in the middle of a request's headers before the
    /// connection is closed (`None`: no limit). Default 30 s. Checked by one coarse timer per
    /// connection rather than one per request: a stalled client is cut off between one and two
    /// timeouts after its first byte.
    pub fn header_read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Whether HTTP/1.1 connections are kept open between requests. Default on.
    pub fn keep_alive(mut self, enabled: bool) -> Self {
        self.keep_alive = enabled;
        self
    }

    /// The largest HTTP/1 read buffer, which bounds a request's headers (at least 8192 bytes).
    /// Default hyper's (about 400 KiB).
    pub fn http1_max_buf_size(mut self, bytes: usize) -> Self {
        self.http1_max_buf_size = Some(bytes.max(8192));
        self
    }

    /// The most streams one HTTP/2 connection may have open at once. Default 200.
    pub fn http2_max_concurrent_streams(mut self, streams: u32) -> Self {
        self.http2_max_concurrent_streams = streams;
        self
    }

    /// The largest header list of one HTTP/2 request, in bytes. Default 64 KiB.
    pub fn http2_max_header_list_size(mut self, bytes: u32) -> Self {
        self.http2_max_header_list_size = bytes;
        self
    }

    /// How often an idle HTTP/2 connection is pinged (`None`: never), and how long the answer
    /// may take before the connection is closed. Default: never, 20 s.
    pub fn http2_keep_alive(mut self, interval: Option<Duration>, timeout: Duration) -> Self {
        self.http2_keep_alive_interval = interval;
        self.http2_keep_alive_timeout = timeout;
        self
    }

    /// How long a connection may carry no request before it is closed (HTTP/2: GOAWAY), `None`
    /// for no limit. Default 60 s; checked by the same timer as
    /// [`HttpConfig::header_read_timeout`], so it may be exceeded by up to the shorter of the two.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    pub(crate) fn idle_timeout_setting(&self) -> Option<Duration> {
        self.idle_timeout
    }

    pub(crate) fn header_read_timeout_setting(&self) -> Option<Duration> {
        self.header_read_timeout
    }

    /// A hyper-util server builder with these settings (HTTP/1.1 and HTTP/2 on one port).
    pub(crate) fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        let mut http1 = builder.http1();
        // The header-read timeout is the connection watchdog's (`crate::watchdog`), not
        // hyper's, which arms a timer for every request.
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .keep_alive(self.keep_alive);
        if let Some(bytes) = self.http1_max_buf_size {
            http1.max_buf_size(bytes);
        }
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(self.http2_max_concurrent_streams)
            .max_header_list_size(self.http2_max_header_list_size)
            .keep_alive_interval(self.http2_keep_alive_interval)
            .keep_alive_timeout(self.http2_keep_alive_timeout);
        builder
    }
}
