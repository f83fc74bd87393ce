//! Composition overhead: the generated `GetProductPage` handler against a hand-written tonic
//! handler making the same downstream calls concurrently, measured in the same run, alternating
//! rounds so machine noise hits both alike.
//!
//! ```sh
//! cargo bench -p mosaic-tests --bench composition
//! COMPOSITION_STEPS=1 cargo bench -p mosaic-tests --bench composition   # + diagnostic variant
//! ```
//!
//! Both handlers are hosted the same way: each in a gateway of its own, built from the same
//! `gateway.toml` (so each has its own downstream channels, made the same way), in front of the
//! same four demo services, all in one process. The generated one is `StorefrontComposer`; the
//! hand-written one is [`HandWritten`] below. Before measuring, both are asked for the same
//! pages and must answer identically. Then rounds of closed-loop `GetProductPage` calls
//! alternate between them (which goes first swaps every round). Printed per round and as
//! medians over rounds: throughput, p50 and p99 of each, process CPU time per call, and the
//! ratios generated / hand-written of throughput (per round, then the median and quartiles)
//! and of CPU per call.
//!
//! `COMPOSITION_STEPS=1` adds a third handler, the hand-written one with every downstream call
//! run as a `mosaic_gateway::compose::step` (a spawned task behind a shared handle, as the
//! generated code runs a step that several others read): the difference to the plain
//! hand-written one is what the step machinery costs.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use futures_util::future::try_join_all;
use mosaic_demo::demo::catalog::v1::GetProductRequest;
use mosaic_demo::demo::catalog::v1::catalog_service_client::CatalogServiceClient;
use mosaic_demo::demo::inventory::v1::GetStockRequest;
use mosaic_demo::demo::inventory::v1::inventory_service_client::InventoryServiceClient;
use mosaic_demo::demo::reviews::v1::ListReviewsRequest;
use mosaic_demo::demo::reviews::v1::review_service_client::ReviewServiceClient;
use mosaic_demo::demo::storefront::v1::storefront_client::StorefrontClient;
use mosaic_demo::demo::storefront::v1::storefront_server::{Storefront, StorefrontServer};
use mosaic_demo::demo::storefront::v1::{
    Availability, CheckAvailabilityRequest, GetProductPageRequest, GetUserProfileRequest,
    ProductPage, RatingSummary, ReviewCard, StorefrontComposer, UserProfile,
};
use mosaic_demo::demo::users::v1::GetUserRequest;
use mosaic_demo::demo::users::v1::user_service_client::UserServiceClient;
use mosaic_demo_services::{DemoService, ServiceHandle};
use mosaic_gateway::compose::{self, DownstreamChannel, Downstreams};
use mosaic_gateway::{Gateway, GatewayBuilder, GatewayConfig, GatewayHandle};
use mosaic_tests::load::{self, LoadReport, median};
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

const ROUNDS: usize = 30;
const WARMUP: Duration = Duration::from_millis(200);
const MEASURE: Duration = Duration::from_millis(1500);
const CONCURRENCY: [usize; 2] = [16, 64];
/// Products with at least `REVIEW_LIMIT` reviews, so every page makes 4 + 5 downstream calls.
const PRODUCTS: [i64; 4] = [7, 12, 23, 41];
const REVIEW_LIMIT: i32 = 5;

// ---------------------------------------------------------------------------------------------
// The hand-written handler.

/// `GetProductPage`'s budget, as annotated on the method (`timeout: "800ms"`).
const PAGE_TIMEOUT: Duration = Duration::from_millis(800);
/// Time kept back from each downstream call to answer before the edge deadline.
const MARGIN: Duration = Duration::from_millis(5);

/// `Storefront` written by hand: typed clients made once, the three independent calls joined,
/// one `GetUser` per review as soon as the reviews are in, and the edge deadline passed on.
///
/// With `as_steps`, each downstream call instead runs as a `compose::step` (a spawned task behind
/// a shared handle), as generated handlers run steps that several others read (and once ran
/// every step): the diagnostic variant that isolates what the step machinery costs (see
/// `COMPOSITION_STEPS` in `main`).
#[derive(Clone)]
struct HandWritten {
    catalog: CatalogServiceClient<DownstreamChannel>,
    inventory: InventoryServiceClient<DownstreamChannel>,
    reviews: ReviewServiceClient<DownstreamChannel>,
    users: UserServiceClient<DownstreamChannel>,
    as_steps: bool,
}

impl HandWritten {
    fn new(downstreams: &Downstreams, as_steps: bool) -> Result<Self, Status> {
        Ok(Self {
            catalog: CatalogServiceClient::new(
                downstreams.channel("demo.catalog.v1.CatalogService")?,
            ),
            inventory: InventoryServiceClient::new(
                downstreams.channel("demo.inventory.v1.InventoryService")?,
            ),
            reviews: ReviewServiceClient::new(
                downstreams.channel("demo.reviews.v1.ReviewService")?,
            ),
            users: UserServiceClient::new(downstreams.channel("demo.users.v1.UserService")?),
            as_steps,
        })
    }

    /// Awaits one downstream call in place (or, with `as_steps`, as a step task of its own).
    async fn call<T, F>(&self, call: F) -> Result<T, Status>
    where
        F: Future<Output = Result<T, Status>> + Send + 'static,
        T: Clone + Send + Sync + 'static,
    {
        if self.as_steps {
            compose::step(call).await.map(Arc::unwrap_or_clone)
        } else {
            call.await
        }
    }

    async fn product_page(
        &self,
        deadline: Deadline,
        product_id: i64,
        review_limit: i32,
    ) -> Result<ProductPage, Status> {
        let product = self.call({
            let mut catalog = self.catalog.clone();
            async move {
                let request = deadline.request(GetProductRequest { id: product_id })?;
                catalog
                    .get_product(request)
                    .await
                    .map(Response::into_inner)
                    .map_err(failed("p", "demo.catalog.v1.CatalogService/GetProduct"))
            }
        });
        let stock = self.call({
            let mut inventory = self.inventory.clone();
            async move {
                let request = deadline.request(GetStockRequest { product_id })?;
                inventory
                    .get_stock(request)
                    .await
                    .map(Response::into_inner)
                    .map_err(failed(
                        "stock",
                        "demo.inventory.v1.InventoryService/GetStock",
                    ))
            }
        });
        // The authors are fetched as soon as the reviews are in, whatever the other two do.
        let reviews = async {
            let reviews = self
                .call({
                    let mut reviews = self.reviews.clone();
                    async move {
                        let request = deadline.request(ListReviewsRequest {
                            product_id,
                            limit: review_limit,
                        })?;
                        reviews
                            .list_reviews(request)
                            .await
                            .map(Response::into_inner)
                            .map_err(failed("rs", "demo.reviews.v1.ReviewService/ListReviews"))
                    }
                })
                .await?;
            let authors = try_join_all(reviews.reviews.iter().map(|review| {
                let mut users = self.users.clone();
                let id = review.author_id;
                self.call(async move {
                    let request = deadline.request(GetUserRequest { id })?;
                    users
                        .get_user(request)
                        .await
                        .map(Response::into_inner)
                        .map_err(failed("author", "demo.users.v1.UserService/GetUser"))
                })
            }))
            .await?;
            Ok::<_, Status>((reviews, authors))
        };
        let (product, stock, (reviews, authors)) = tokio::try_join!(product, stock, reviews)?;

        let rating = RatingSummary {
            average: reviews.average_rating,
            count: reviews.total_count,
        };
        let cards = reviews
            .reviews
            .into_iter()
            .zip(authors)
            .map(|(review, author)| ReviewCard {
                review_id: review.id,
                author_name: author
                    .user
                    .map(|user| user.display_name)
                    .unwrap_or_default(),
                rating: review.rating,
                title: review.title,
                body: review.body,
            })
            .collect();
        Ok(ProductPage {
            product: product.product,
            available: stock.available,
            in_stock: stock.available > 0,
            reviews: cards,
            rating: Some(rating),
        })
    }
}

#[tonic::async_trait]
impl Storefront for HandWritten {
    async fn get_product_page(
        &self,
        request: Request<GetProductPageRequest>,
    ) -> Result<Response<ProductPage>, Status> {
        let deadline = Deadline::start(&request, PAGE_TIMEOUT);
        let GetProductPageRequest {
            product_id,
            review_limit,
        } = request.into_inner();
        let page = self.product_page(deadline, product_id, review_limit);
        match tokio::time::timeout_at(deadline.at, page).await {
            Ok(page) => page.map(Response::new),
            Err(_elapsed) => Err(Status::deadline_exceeded(
                "deadline for demo.storefront.v1.Storefront/GetProductPage exceeded",
            )),
        }
    }

    async fn get_user_profile(
        &self,
        _request: Request<GetUserProfileRequest>,
    ) -> Result<Response<UserProfile>, Status> {
        Err(Status::unimplemented("not written by hand"))
    }

    async fn check_availability(
        &self,
        _request: Request<CheckAvailabilityRequest>,
    ) -> Result<Response<Availability>, Status> {
        Err(Status::unimplemented("not written by hand"))
    }
}

/// The edge deadline: the caller's `grpc-timeout` or the method's budget, whichever is shorter.
#[derive(Clone, Copy)]
struct Deadline {
    at: Instant,
}

impl Deadline {
    fn start<T>(request: &Request<T>, budget: Duration) -> Self {
        let caller = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout);
        let budget = caller.map_or(budget, |caller| caller.min(budget));
        Self {
            at: Instant::now() + budget,
        }
    }

    /// A downstream request carrying the time left, less a margin, as `grpc-timeout`.
    fn request<M>(self, message: M) -> Result<Request<M>, Status> {
        let remaining = self.at.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Status::deadline_exceeded("the edge deadline has passed"));
        }
        let mut request = Request::new(message);
        request.set_timeout(remaining - MARGIN.min(remaining / 10));
        Ok(request)
    }
}

/// `1` to `8` digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`), as the gRPC spec says.
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Keeps a downstream failure's code and names the step and method in its message.
fn failed(step: &'static str, method: &'static str) -> impl Fn(Status) -> Status {
    move |status| {
        Status::new(
            status.code(),
            format!("step `{step}` ({method}) failed: {}", status.message()),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The harness.

/// Starts a gateway from `config` hosting what `host` adds, the same way for both handlers.
async fn start_gateway(
    config: &str,
    host: impl FnOnce(GatewayBuilder) -> anyhow::Result<GatewayBuilder>,
) -> anyhow::Result<GatewayHandle> {
    let config = GatewayConfig::from_toml_str(config, "bench gateway.toml")?;
    let gateway = host(Gateway::builder(config))?
        .descriptor_set("demo protos", mosaic_demo::FILE_DESCRIPTOR_SET)?
        .bind()
        .await?;
    Ok(gateway.spawn())
}

fn page_request(product_id: i64) -> GetProductPageRequest {
    GetProductPageRequest {
        product_id,
        review_limit: REVIEW_LIMIT,
    }
}

/// What one variant did in one round.
#[derive(Clone)]
struct Round {
    load: LoadReport,
    /// Process CPU time (user + system, every thread: callers, gateways and services) per
    /// successful call during the measured phase, in µs; `None` where `/proc` is missing.
    cpu_per_call: Option<f64>,
}

/// Closed-loop `GetProductPage` calls; worker `i` starts at product `i` and rotates.
async fn measure(channel: Channel, concurrency: usize) -> Round {
    let mut worker = 0;
    let load = load::run(concurrency, WARMUP, MEASURE, || {
        let client = StorefrontClient::new(channel.clone());
        let mut next = worker;
        worker += 1;
        move || {
            let mut client = client.clone();
            let product_id = PRODUCTS[next % PRODUCTS.len()];
            next += 1;
            async move {
                client
                    .get_product_page(page_request(product_id))
                    .await
                    .is_ok()
            }
        }
    });
    let (load, cpu) = tokio::join!(load, load::cpu_during(WARMUP, MEASURE));
    let cpu_per_call = cpu
        .filter(|_| load.ok > 0)
        .map(|cpu| micros(cpu) / load.ok as f64);
    Round { load, cpu_per_call }
}

/// Every variant answers the same pages as the first (and with `REVIEW_LIMIT` reviews each).
async fn check_identical(variants: &[Variant]) -> anyhow::Result<()> {
    for product_id in PRODUCTS {
        let mut pages = Vec::new();
        for variant in variants {
            let page = StorefrontClient::new(variant.channel.clone())
                .get_product_page(page_request(product_id))
                .await
                .with_context(|| format!("{} page {product_id}", variant.name))?
                .into_inner();
            pages.push((variant.name, page));
        }
        let Some(((first_name, first), others)) = pages.split_first() else {
            continue;
        };
        for (name, page) in others {
            ensure!(
                page == first,
                "product {product_id}: {first_name} and {name} differ\n{first:?}\n{page:?}"
            );
        }
        ensure!(
            first.reviews.len() == REVIEW_LIMIT as usize,
            "product {product_id} has {} reviews, want {REVIEW_LIMIT}",
            first.reviews.len()
        );
    }
    let names: Vec<&str> = variants.iter().map(|variant| variant.name).collect();
    println!(
        "identical ProductPage from {names:?} for products {PRODUCTS:?} (review_limit {REVIEW_LIMIT})"
    );
    Ok(())
}

/// One handler under test, and what its rounds measured.
struct Variant {
    name: &'static str,
    channel: Channel,
    rps: Vec<f64>,
    /// Throughput relative to the hand-written handler's in the same round.
    ratio: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    cpu: Vec<f64>,
    /// CPU per call relative to the hand-written handler's in the same round.
    cpu_ratio: Vec<f64>,
}

impl Variant {
    fn new(name: &'static str, gateway: &GatewayHandle) -> Self {
        Self {
            name,
            channel: mosaic_tests::channel(gateway.local_addr()),
            rps: Vec::new(),
            ratio: Vec::new(),
            p50: Vec::new(),
            p99: Vec::new(),
            cpu: Vec::new(),
            cpu_ratio: Vec::new(),
        }
    }

    fn record(&mut self, round: &Round, baseline: &Round) {
        self.rps.push(round.load.throughput());
        self.ratio
            .push(round.load.throughput() / baseline.load.throughput());
        self.p50.push(micros(round.load.quantile(0.50)));
        self.p99.push(micros(round.load.quantile(0.99)));
        if let (Some(cpu), Some(base)) = (round.cpu_per_call, baseline.cpu_per_call) {
            self.cpu.push(cpu);
            self.cpu_ratio.push(cpu / base);
        }
    }

    /// Medians (and the quartiles of the throughput ratio) over the rounds recorded since the
    /// last call, which clears them.
    fn medians(&mut self) -> String {
        let ratio = std::mem::take(&mut self.ratio);
        format!(
            "{:<22} {:>6.0} calls/s  p50 {:>8.1} µs  p99 {:>8.1} µs  CPU {:>6.1} µs/call  \
             throughput ratio {:.3} (quartiles {:.3}..{:.3})  CPU ratio {:.3}",
            self.name,
            median(std::mem::take(&mut self.rps)),
            median(std::mem::take(&mut self.p50)),
            median(std::mem::take(&mut self.p99)),
            median(std::mem::take(&mut self.cpu)),
            median(ratio.clone()),
            quantile(ratio.clone(), 0.25),
            quantile(ratio, 0.75),
            median(std::mem::take(&mut self.cpu_ratio)),
        )
    }
}

/// The value at quantile `q` (nearest rank) of several values.
fn quantile(mut values: Vec<f64>, q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let Some(last) = values.len().checked_sub(1) else {
        return 0.0;
    };
    values[(q * last as f64).round() as usize]
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn main() -> anyhow::Result<()> {
    // `COMPOSITION_STEPS=1` adds a diagnostic third handler: the hand-written one with each
    // downstream call run as a `compose::step`, to isolate what the step machinery costs.
    let with_steps = std::env::var_os("COMPOSITION_STEPS").is_some_and(|value| value == "1");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut services: Vec<ServiceHandle> = Vec::new();
        for service in DemoService::ALL {
            services.push(mosaic_tests::start_service(service).await?);
        }
        let endpoints: Vec<(DemoService, String)> = services
            .iter()
            .map(|handle| (handle.service(), handle.endpoint()))
            .collect();
        let config = mosaic_tests::gateway_toml(&endpoints);
        let hand_written = |as_steps| {
            move |builder: GatewayBuilder| {
                let handler = HandWritten::new(&builder.downstreams(), as_steps)?;
                Ok(builder.grpc_service(StorefrontServer::new(handler)))
            }
        };
        let mut gateways = vec![
            start_gateway(&config, hand_written(false)).await?,
            start_gateway(&config, |builder| {
                let composer = StorefrontComposer::new(builder.downstreams());
                Ok(builder.composer(composer))
            })
            .await?,
        ];
        let mut variants = vec![
            Variant::new("hand-written", &gateways[0]),
            Variant::new("generated", &gateways[1]),
        ];
        if with_steps {
            gateways.push(start_gateway(&config, hand_written(true)).await?);
            variants.push(Variant::new("hand-written as steps", &gateways[2]));
        }

        check_identical(&variants).await?;

        let mut summary = Vec::new();
        for concurrency in CONCURRENCY {
            println!(
                "GetProductPage (review_limit {REVIEW_LIMIT}), {concurrency} concurrent callers, \
                 {ROUNDS} rounds of {MEASURE:?} after {WARMUP:?} warm-up"
            );
            for round in 0..ROUNDS {
                // Each round starts with the next variant, so none always runs first.
                let mut reports = vec![None; variants.len()];
                for offset in 0..variants.len() {
                    let index = (round + offset) % variants.len();
                    let report = measure(variants[index].channel.clone(), concurrency).await;
                    ensure!(
                        report.load.failed == 0,
                        "{} failed {} calls in round {}",
                        variants[index].name,
                        report.load.failed,
                        round + 1
                    );
                    reports[index] = Some(report);
                }
                let reports: Vec<Round> = reports.into_iter().flatten().collect();
                let Some(baseline) = reports.first() else {
                    continue;
                };
                for (variant, report) in variants.iter_mut().zip(&reports) {
                    let cpu = report
                        .cpu_per_call
                        .map_or_else(|| "?".to_owned(), |cpu| format!("{cpu:.1}"));
                    println!(
                        "  round {:>2} {:<22} {}  CPU {cpu} µs/call",
                        round + 1,
                        variant.name,
                        report.load.summary()
                    );
                    variant.record(report, baseline);
                }
                if let (Some(hand), Some(generated)) = (reports.first(), reports.get(1)) {
                    println!(
                        "  round {:>2} ratio generated/hand-written {:.3}",
                        round + 1,
                        generated.load.throughput() / hand.load.throughput()
                    );
                }
            }
            println!("  medians, {concurrency} callers:");
            summary.push(format!("{concurrency} concurrent callers:"));
            for variant in &mut variants {
                let line = variant.medians();
                println!("    {line}");
                summary.push(format!("  {line}"));
            }
        }
        println!("medians over {ROUNDS} rounds:");
        for line in summary {
            println!("  {line}");
        }

        for gateway in gateways {
            gateway.shutdown().await;
        }
        for service in services {
            service.stop().await;
        }
        anyhow::Ok(())
    })
}
