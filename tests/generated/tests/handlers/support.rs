//! Stub downstream services that record what they receive, and a real gateway hosting one
//! generated composer in front of them.
//!
//! Each stubbed method is a [`Method`]: it keeps every request it receives (the message, its
//! `grpc-timeout` and its `grpc-previous-rpc-attempts`) and answers as the test says, possibly
//! after a delay. The stub services implement the tonic server traits generated into this crate
//! for the downstream protos, so the composer's calls cross a real HTTP/2 hop and a real tonic
//! server; the composer itself is hosted by a real `mosaic_gateway::Gateway` (as
//! `GatewayBuilder::composer` hosts it in production) and called with the generated tonic client.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mosaic_gateway::compose::{Composer, Downstreams};
use mosaic_gateway::{Gateway, GatewayConfig, GatewayHandle};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::codegen::BoxStream;
use tonic::transport::server::{Router, TcpIncoming};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status, Streaming};

use mosaic_generated_check::demo::catalog::v1 as catalog;
use mosaic_generated_check::demo::inventory::v1 as inventory;
use mosaic_generated_check::demo::reviews::v1 as reviews;
use mosaic_generated_check::demo::users::v1 as users;
use mosaic_generated_check::golden::aliases::v1 as aliases;
use mosaic_generated_check::golden::resilience::v1 as resilience;
use mosaic_generated_check::golden::shapes::v1 as shapes;
use mosaic_generated_check::golden::storage::v1 as storage;

/// One request as a stub received it.
#[derive(Clone, Debug)]
pub(crate) struct Received<M> {
    /// The request message.
    pub(crate) message: M,
    /// Its `grpc-timeout`, parsed.
    pub(crate) timeout: Option<Duration>,
    /// Its `grpc-previous-rpc-attempts`: `None` on a first attempt.
    pub(crate) previous_attempts: Option<u32>,
    /// All of its metadata.
    pub(crate) metadata: tonic::metadata::MetadataMap,
}

/// How a stub answers one request.
pub(crate) struct Answer<R> {
    delay: Duration,
    result: Result<R, Status>,
    /// Response headers sent with a successful answer.
    headers: Vec<(&'static str, &'static str)>,
}

impl<R> Answer<R> {
    /// Answers `message` at once.
    pub(crate) fn ok(message: R) -> Self {
        Self {
            delay: Duration::ZERO,
            result: Ok(message),
            headers: Vec::new(),
        }
    }

    /// Fails with `status` at once.
    pub(crate) fn err(status: Status) -> Self {
        Self {
            delay: Duration::ZERO,
            result: Err(status),
            headers: Vec::new(),
        }
    }

    /// The same answer, `delay` later.
    pub(crate) fn after(self, delay: Duration) -> Self {
        Self { delay, ..self }
    }

    /// The same answer, with response header `name` (appended: a name may repeat).
    pub(crate) fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }
}

type Answering<M, R> = dyn Fn(&M, usize) -> Answer<R> + Send + Sync;

/// One stubbed downstream method: records each request, then answers it with what `answer`
/// returns for the request and its index among this method's requests (0 for the first).
pub(crate) struct Method<M, R> {
    received: Arc<Mutex<Vec<Received<M>>>>,
    answer: Arc<Answering<M, R>>,
}

impl<M, R> Clone for Method<M, R> {
    fn clone(&self) -> Self {
        Self {
            received: Arc::clone(&self.received),
            answer: Arc::clone(&self.answer),
        }
    }
}

impl<M, R> Default for Method<M, R> {
    /// A method the test does not expect to be called: it answers `UNIMPLEMENTED`.
    fn default() -> Self {
        Self::new(|_, _| Answer::err(Status::unimplemented("not stubbed by this test")))
    }
}

impl<M, R> Method<M, R> {
    /// A method answering with `answer(request, index)`.
    pub(crate) fn new(answer: impl Fn(&M, usize) -> Answer<R> + Send + Sync + 'static) -> Self {
        Self {
            received: Arc::new(Mutex::new(Vec::new())),
            answer: Arc::new(answer),
        }
    }

    /// A method answering every request with `message`.
    pub(crate) fn always(message: R) -> Self
    where
        R: Clone + Send + Sync + 'static,
    {
        Self::new(move |_, _| Answer::ok(message.clone()))
    }

    /// A method failing every request with `status`.
    pub(crate) fn failing(status: Status) -> Self {
        Self::new(move |_, _| Answer::err(status.clone()))
    }

    /// Every request received so far, in arrival order.
    pub(crate) fn received(&self) -> Vec<Received<M>>
    where
        M: Clone,
    {
        self.received.lock().unwrap().clone()
    }

    /// The messages received so far, in arrival order.
    pub(crate) fn messages(&self) -> Vec<M>
    where
        M: Clone,
    {
        self.received().into_iter().map(|r| r.message).collect()
    }

    /// Records `request` and answers it.
    async fn call(&self, request: Request<M>) -> Result<Response<R>, Status> {
        let metadata = request.metadata();
        let header = |name: &str| {
            metadata
                .get(name)
                .map(|value| value.to_str().unwrap().to_owned())
        };
        let timeout = header("grpc-timeout").map(|value| parse_grpc_timeout(&value));
        let previous_attempts = header("grpc-previous-rpc-attempts").map(|v| v.parse().unwrap());
        let metadata = metadata.clone();
        let message = request.into_inner();
        let answer = {
            let mut received = self.received.lock().unwrap();
            let answer = (self.answer)(&message, received.len());
            received.push(Received {
                message,
                timeout,
                previous_attempts,
                metadata,
            });
            answer
        };
        tokio::time::sleep(answer.delay).await;
        let headers = answer.headers;
        answer.result.map(|message| {
            let mut response = Response::new(message);
            for (name, value) in headers {
                response.metadata_mut().append(name, value.parse().unwrap());
            }
            response
        })
    }
}

/// A `grpc-timeout` value (`200m`, `5S`, …) as a duration.
fn parse_grpc_timeout(value: &str) -> Duration {
    let (amount, unit) = value.split_at(value.len() - 1);
    let amount: u64 = amount.parse().unwrap();
    match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => panic!("bad grpc-timeout unit in {value:?}"),
    }
}

/// Answers a method no fixture calls.
fn not_stubbed<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("no fixture calls this method"))
}

/// `demo.users.v1.UserService`.
#[derive(Clone, Default)]
pub(crate) struct Users {
    pub(crate) get_user: Method<users::GetUserRequest, users::GetUserResponse>,
}

#[tonic::async_trait]
impl users::user_service_server::UserService for Users {
    async fn get_user(
        &self,
        request: Request<users::GetUserRequest>,
    ) -> Result<Response<users::GetUserResponse>, Status> {
        self.get_user.call(request).await
    }

    async fn batch_get_users(
        &self,
        _: Request<users::BatchGetUsersRequest>,
    ) -> Result<Response<users::BatchGetUsersResponse>, Status> {
        not_stubbed()
    }
}

/// `demo.catalog.v1.CatalogService`.
#[derive(Clone, Default)]
pub(crate) struct Catalog {
    pub(crate) get_product: Method<catalog::GetProductRequest, catalog::GetProductResponse>,
}

#[tonic::async_trait]
impl catalog::catalog_service_server::CatalogService for Catalog {
    async fn get_product(
        &self,
        request: Request<catalog::GetProductRequest>,
    ) -> Result<Response<catalog::GetProductResponse>, Status> {
        self.get_product.call(request).await
    }

    async fn batch_get_products(
        &self,
        _: Request<catalog::BatchGetProductsRequest>,
    ) -> Result<Response<catalog::BatchGetProductsResponse>, Status> {
        not_stubbed()
    }

    async fn list_products(
        &self,
        _: Request<catalog::ListProductsRequest>,
    ) -> Result<Response<catalog::ListProductsResponse>, Status> {
        not_stubbed()
    }
}

/// `demo.reviews.v1.ReviewService`.
#[derive(Clone, Default)]
pub(crate) struct Reviews {
    pub(crate) list_reviews: Method<reviews::ListReviewsRequest, reviews::ListReviewsResponse>,
}

#[tonic::async_trait]
impl reviews::review_service_server::ReviewService for Reviews {
    async fn list_reviews(
        &self,
        request: Request<reviews::ListReviewsRequest>,
    ) -> Result<Response<reviews::ListReviewsResponse>, Status> {
        self.list_reviews.call(request).await
    }

    async fn list_reviews_by_author(
        &self,
        _: Request<reviews::ListReviewsByAuthorRequest>,
    ) -> Result<Response<reviews::ListReviewsByAuthorResponse>, Status> {
        not_stubbed()
    }

    type StreamReviewsStream = BoxStream<reviews::Review>;

    async fn stream_reviews(
        &self,
        _: Request<reviews::StreamReviewsRequest>,
    ) -> Result<Response<Self::StreamReviewsStream>, Status> {
        not_stubbed()
    }
}

/// `demo.inventory.v1.InventoryService`.
#[derive(Clone, Default)]
pub(crate) struct Inventory {
    pub(crate) get_stock: Method<inventory::GetStockRequest, inventory::Stock>,
}

#[tonic::async_trait]
impl inventory::inventory_service_server::InventoryService for Inventory {
    async fn get_stock(
        &self,
        request: Request<inventory::GetStockRequest>,
    ) -> Result<Response<inventory::Stock>, Status> {
        self.get_stock.call(request).await
    }

    async fn sum_stock(
        &self,
        _: Request<Streaming<inventory::GetStockRequest>>,
    ) -> Result<Response<inventory::SumStockResponse>, Status> {
        not_stubbed()
    }

    type WatchStockStream = BoxStream<inventory::Stock>;

    async fn watch_stock(
        &self,
        _: Request<Streaming<inventory::GetStockRequest>>,
    ) -> Result<Response<Self::WatchStockStream>, Status> {
        not_stubbed()
    }
}

/// `golden.storage.v1.Down`.
#[derive(Clone, Default)]
pub(crate) struct Down {
    pub(crate) get: Method<storage::GetRequest, storage::Thing>,
}

#[tonic::async_trait]
impl storage::down_server::Down for Down {
    async fn get(
        &self,
        request: Request<storage::GetRequest>,
    ) -> Result<Response<storage::Thing>, Status> {
        self.get.call(request).await
    }
}

/// `golden.resilience.v1.Prices`.
#[derive(Clone, Default)]
pub(crate) struct Prices {
    pub(crate) quote: Method<resilience::QuoteRequest, resilience::QuoteResponse>,
    pub(crate) reserve: Method<resilience::ReserveRequest, resilience::ReserveResponse>,
    pub(crate) stock: Method<resilience::StockRequest, resilience::StockResponse>,
}

#[tonic::async_trait]
impl resilience::prices_server::Prices for Prices {
    async fn quote(
        &self,
        request: Request<resilience::QuoteRequest>,
    ) -> Result<Response<resilience::QuoteResponse>, Status> {
        self.quote.call(request).await
    }

    async fn reserve(
        &self,
        request: Request<resilience::ReserveRequest>,
    ) -> Result<Response<resilience::ReserveResponse>, Status> {
        self.reserve.call(request).await
    }

    async fn stock(
        &self,
        request: Request<resilience::StockRequest>,
    ) -> Result<Response<resilience::StockResponse>, Status> {
        self.stock.call(request).await
    }
}

/// `golden.shapes.v1.Catalog`.
#[derive(Clone, Default)]
pub(crate) struct ShapesCatalog {
    pub(crate) get_item: Method<shapes::GetItemRequest, shapes::Item>,
    /// Answers `google.protobuf.Empty`, which prost maps to `()`.
    pub(crate) touch: Method<shapes::TouchRequest, ()>,
}

#[tonic::async_trait]
impl shapes::catalog_server::Catalog for ShapesCatalog {
    async fn get_item(
        &self,
        request: Request<shapes::GetItemRequest>,
    ) -> Result<Response<shapes::Item>, Status> {
        self.get_item.call(request).await
    }

    async fn touch(&self, request: Request<shapes::TouchRequest>) -> Result<Response<()>, Status> {
        self.touch.call(request).await
    }
}

/// `golden.aliases.v1.Directory`.
#[derive(Clone, Default)]
pub(crate) struct Directory {
    pub(crate) get_person: Method<aliases::GetPersonRequest, aliases::GetPersonResponse>,
}

#[tonic::async_trait]
impl aliases::directory_server::Directory for Directory {
    async fn get_person(
        &self,
        request: Request<aliases::GetPersonRequest>,
    ) -> Result<Response<aliases::GetPersonResponse>, Status> {
        self.get_person.call(request).await
    }
}

/// The stub services of one test, served by tonic on a loopback port until dropped.
pub(crate) struct Stubs {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Stubs {
    /// Serves `router` (the stub services, added to a `tonic::transport::Server`) on
    /// `127.0.0.1:0`.
    pub(crate) async fn serve(router: Router) -> Stubs {
        let listener = TcpListener::bind(loopback()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                    stop.await.ok();
                })
                .await
                .unwrap();
        });
        Stubs {
            addr,
            shutdown: Some(shutdown),
            task,
        }
    }

    /// The `http://` endpoint, for `gateway.toml`.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Stubs {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            shutdown.send(()).ok();
        }
        self.task.abort();
    }
}

/// A gateway hosting one generated composer, whose downstream services all run at `stubs`.
pub(crate) struct Edge {
    gateway: Option<GatewayHandle>,
    /// Kept serving as long as the gateway.
    _stubs: Stubs,
}

impl Edge {
    /// Starts a gateway on `127.0.0.1:0` with one upstream, the stubs, serving every service in
    /// `C::DOWNSTREAM_SERVICES`, and the composer `make` builds on the gateway's downstreams.
    pub(crate) async fn start<C: Composer>(
        stubs: Stubs,
        make: impl FnOnce(Downstreams) -> C,
    ) -> Edge {
        Self::configured(stubs, "", |downstreams, _| make(downstreams))
            .await
            .unwrap()
    }

    /// Like [`start`](Self::start), with `extra` appended to the gateway's configuration and
    /// the configuration passed to `make`; the gateway's error when it does not bind.
    pub(crate) async fn configured<C: Composer>(
        stubs: Stubs,
        extra: &str,
        make: impl FnOnce(Downstreams, &GatewayConfig) -> C,
    ) -> Result<Edge, mosaic_gateway::GatewayError> {
        let services: Vec<String> = C::DOWNSTREAM_SERVICES
            .iter()
            .map(|service| format!("\"{service}\""))
            .collect();
        let toml = format!(
            "[listener]\naddress = \"127.0.0.1:0\"\ndrain_timeout = \"1s\"\n\n\
             [upstreams.stubs]\nendpoints = [\"{}\"]\nservices = [{}]\n{extra}",
            stubs.endpoint(),
            services.join(", ")
        );
        let config = GatewayConfig::from_toml_str(&toml, "test gateway.toml").unwrap();
        let builder = Gateway::builder(config.clone());
        let composer = make(builder.downstreams(), &config);
        let gateway = builder.composer(composer).bind().await?.spawn();
        Ok(Edge {
            gateway: Some(gateway),
            _stubs: stubs,
        })
    }

    /// A channel to the gateway, for the generated edge client.
    pub(crate) fn channel(&self) -> Channel {
        let addr = self.gateway.as_ref().unwrap().local_addr();
        Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy()
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            // Shut down in the background: the test's runtime ends with the test anyway.
            tokio::spawn(gateway.shutdown());
        }
    }
}

/// `127.0.0.1:0`.
fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A request with `timeout` as its `grpc-timeout`: the edge call's deadline is then the
/// method's own, and a failure seen by the test is the gateway's answer, never tonic's client
/// ending the call itself (`CANCELLED`).
pub(crate) fn request<M>(message: M, timeout: Duration) -> Request<M> {
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    request
}

/// Asserts that `result` failed with `code` and exactly `message`.
#[track_caller]
pub(crate) fn assert_status<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: tonic::Code,
    message: &str,
) {
    let status = result.expect_err("the call should fail");
    assert_eq!(
        (status.code(), status.message()),
        (code, message),
        "{status:?}"
    );
}
