//! [`HttpConfig`]: how each worker's hyper-util server treats its connections.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioExecutor;
use hyper_util::rt::TokioTimer;
use hyper_util::server::conn::auto::{self, Http1Builder, Http2Builder};

/// The HTTP settings of every worker: timeouts and limits for HTTP/1.1 and HTTP/2.
///
/// The defaults suit a server facing the internet: a client has 30 s to send a request's
/// headers, a connection with no request for 60 s is closed, HTTP/1.1 keep-alive is on, an
/// HTTP/2 connection carries at most 200 concurrent streams and 64 KiB of headers per
/// request, and HTTP/2 pings are off. Anything else hyper-util offers is set through
/// [`HttpConfig::http1`] and [`HttpConfig::http2`].
///
/// ```
/// use std::time::Duration;
/// use clustered_tower::HttpConfig;
///
/// let config = HttpConfig::default()
///     .header_read_timeout(Some(Duration::from_secs(10)))
///     .http2_max_concurrent_streams(100)
///     .http1(|http1| {
///         http1.title_case_headers(true);
///     });
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
    http1: Option<Hook<Http1Hook>>,
    http2: Option<Hook<Http2Hook>>,
    worker_id_header: bool,
    request_metrics: bool,
}

/// What [`HttpConfig::http1`] runs on hyper-util's HTTP/1 builder.
type Http1Hook = dyn Fn(&mut Http1Builder<'_, TokioExecutor>) + Send + Sync;

/// What [`HttpConfig::http2`] runs on hyper-util's HTTP/2 builder.
type Http2Hook = dyn Fn(&mut Http2Builder<'_, TokioExecutor>) + Send + Sync;

/// A user's closure, shared by the config's clones, shown as `<fn>`.
struct Hook<F: ?Sized>(Arc<F>);

impl<F: ?Sized> Clone for Hook<F> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<F: ?Sized> fmt::Debug for Hook<F> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("<fn>")
    }
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
            http1: None,
            http2: None,
            worker_id_header: true,
            request_metrics: true,
        }
    }
}

impl HttpConfig {
    /// How long a client may take to send a request's headers before its connection is closed
    /// (`None`: no limit). Default 30 s; a stalled client is cut off within two timeouts of its
    /// first byte.
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

    /// How long a connection may carry no request before it is closed (`None`: no limit).
    /// Default 60 s; the close comes within the shorter of this and the header-read timeout
    /// after it.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Whether each response names its worker in `x-worker-id`. Default on. Off where clients
    /// should not learn how many workers there are, or to save its cost (about 400 instructions
    /// per request: the header map insert and hyper writing it). A [`crate::ClusterLayer`] in
    /// the service adds nothing when this is off.
    pub fn worker_id_header(mut self, enabled: bool) -> Self {
        self.worker_id_header = enabled;
        self
    }

    /// Whether each request is counted and timed in `cluster_http_requests_total` and
    /// `cluster_http_request_duration_seconds`. Default on. Off saves two clock reads, a
    /// counter and a histogram record per request (about 300 instructions), for an
    /// application that measures its requests itself.
    pub fn request_metrics(mut self, enabled: bool) -> Self {
        self.request_metrics = enabled;
        self
    }

    /// Sets anything else on hyper-util's [`Http1Builder`], after the settings above (so it
    /// wins where both set the same thing); calls add up, in order.
    ///
    /// ```
    /// use clustered_tower::HttpConfig;
    ///
    /// let config = HttpConfig::default().http1(|http1| {
    ///     http1.title_case_headers(true).max_headers(50);
    /// });
    /// ```
    pub fn http1<F>(mut self, configure: F) -> Self
    where
        F: Fn(&mut Http1Builder<'_, TokioExecutor>) + Send + Sync + 'static,
    {
        let hook: Arc<Http1Hook> = match self.http1.take() {
            None => Arc::new(configure),
            Some(Hook(earlier)) => Arc::new(move |http1: &mut Http1Builder<'_, TokioExecutor>| {
                earlier(http1);
                configure(http1);
            }),
        };
        self.http1 = Some(Hook(hook));
        self
    }

    /// Sets anything else on hyper-util's [`Http2Builder`], after the settings above (so it
    /// wins where both set the same thing); calls add up, in order.
    ///
    /// ```
    /// use clustered_tower::HttpConfig;
    ///
    /// let config = HttpConfig::default().http2(|http2| {
    ///     http2.initial_stream_window_size(1 << 20).adaptive_window(true);
    /// });
    /// ```
    pub fn http2<F>(mut self, configure: F) -> Self
    where
        F: Fn(&mut Http2Builder<'_, TokioExecutor>) + Send + Sync + 'static,
    {
        let hook: Arc<Http2Hook> = match self.http2.take() {
            None => Arc::new(configure),
            Some(Hook(earlier)) => Arc::new(move |http2: &mut Http2Builder<'_, TokioExecutor>| {
                earlier(http2);
                configure(http2);
            }),
        };
        self.http2 = Some(Hook(hook));
        self
    }

    pub(crate) fn idle_timeout_setting(&self) -> Option<Duration> {
        self.idle_timeout
    }

    pub(crate) fn header_read_timeout_setting(&self) -> Option<Duration> {
        self.header_read_timeout
    }

    pub(crate) fn worker_id_header_setting(&self) -> bool {
        self.worker_id_header
    }

    pub(crate) fn request_metrics_setting(&self) -> bool {
        self.request_metrics
    }

    /// A hyper-util server builder with these settings (HTTP/1.1 and HTTP/2 on one port), made
    /// once per worker: the user's [`HttpConfig::http1`] and [`HttpConfig::http2`] closures run
    /// here, never per connection.
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
        if let Some(Hook(configure)) = &self.http1 {
            configure(&mut builder.http1());
        }
        if let Some(Hook(configure)) = &self.http2 {
            configure(&mut builder.http2());
        }
        builder
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn hooks_run_when_the_builder_is_made_in_the_order_given_and_show_as_fn() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let record = |name: &'static str| {
            let calls = Arc::clone(&calls);
            move || calls.lock().unwrap().push(name)
        };
        let (first, second, third) = (record("http1 a"), record("http1 b"), record("http2"));
        let config = HttpConfig::default()
            .http1(move |_| first())
            .http2(move |_| third())
            .http1(move |_| second());
        assert!(calls.lock().unwrap().is_empty(), "not run when set");
        let _builder = config.clone().builder();
        assert_eq!(*calls.lock().unwrap(), ["http1 a", "http1 b", "http2"]);
        let shown = format!("{config:?}");
        assert!(shown.contains("http1: Some(<fn>)"), "{shown}");
        assert!(format!("{:?}", HttpConfig::default()).contains("http2: None"));
    }
}
